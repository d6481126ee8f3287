"""Vocabulary of the synthetic deposit reports: regions, deposit profiles, names and helpers.

Everything here is plain data plus a few Russian word-form helpers. The values are plausible
rather than factual: the sample corpus exists to exercise the pipeline, not to describe real
deposits. Word forms (cases) are written out or derived by narrow rules that only apply to the
adjective and noun shapes used in this module.
"""

from __future__ import annotations

from dataclasses import dataclass


def num(value: float, decimals: int = 1) -> str:
    """Format a number the Russian way, with a decimal comma.

    Args:
        value: The number.
        decimals: Digits after the comma; 0 gives an integer.

    Returns:
        The formatted number, e.g. ``43,7``.
    """
    return f"{value:.{decimals}f}".replace(".", ",")


def fem_oblique(phrase: str) -> str:
    """Turn feminine adjectives (``-ая``) of a phrase into the oblique ``-ой`` form.

    The genitive, dative, instrumental and prepositional of hard feminine adjectives coincide,
    so one helper covers «Центрально-Камчатской зоны» and «к Центрально-Камчатской зоне».

    Args:
        phrase: Words separated by spaces, e.g. ``золото-серебряная малосульфидная``.

    Returns:
        The phrase with every word ending in ``ая`` changed to end in ``ой``.
    """
    return " ".join(w[:-2] + "ой" if w.endswith("ая") else w for w in phrase.split(" "))


def masc_genitive(adjective: str) -> str:
    """Genitive of a masculine adjective: «Агинский» → «Агинского», «Родниковый» → «Родникового»."""
    if adjective.endswith(("ий", "ый", "ой")):
        return adjective[:-2] + "ого"
    raise ValueError(f"not a masculine adjective: {adjective!r}")


@dataclass(frozen=True)
class DepositName:
    """A deposit name: neuter nominative adjective, masculine adjective, Latin file slug."""

    nom: str
    masc: str
    slug: str

    @property
    def gen(self) -> str:
        """Genitive: «Агинского (месторождения)»."""
        return self.nom[:-2] + "ого"

    @property
    def prep(self) -> str:
        """Prepositional: «(на) Агинском (месторождении)»."""
        return self.nom[:-2] + "ом"


@dataclass(frozen=True)
class District:
    """An administrative district named by a masculine ``-ский``/``-цкий`` adjective."""

    masc: str

    @property
    def gen(self) -> str:
        """Genitive: «Быстринского (района)»."""
        return masc_genitive(self.masc)

    @property
    def prep(self) -> str:
        """Prepositional: «(в) Быстринском (районе)»."""
        return self.masc[:-2] + "ом"

    @property
    def fem_obl(self) -> str:
        """Feminine oblique: «(к) Быстринской (депрессии)»."""
        return self.masc[:-2] + "ой"


@dataclass(frozen=True)
class Belt:
    """A geodynamic belt or fold system with its genitive form."""

    nom: str
    gen: str


@dataclass(frozen=True)
class Setting:
    """A geodynamic setting: nominative and prepositional forms."""

    nom: str
    prep: str


@dataclass(frozen=True)
class Region:
    """A subject of the Russian Federation with everything a report mentions about it."""

    nom: str
    gen: str
    districts: tuple[str, ...]
    settlements: tuple[str, ...]
    belts: tuple[Belt, ...]
    settings: tuple[Setting, ...]
    zones: tuple[str, ...]
    provinces: tuple[str, ...]
    suites: tuple[str, ...]
    ages: tuple[str, ...]
    organisation: str
    lat: tuple[int, int]
    lon: tuple[int, int]
    sheet_prefix: str


@dataclass(frozen=True)
class Component:
    """A useful ore component: chemical symbol, nominative, genitive, unit and grade range."""

    sym: str
    nom: str
    gen: str
    unit: str
    lo: float
    hi: float
    decimals: int

    @property
    def metal_unit(self) -> str:
        """Unit of contained metal for a grade in ``unit`` times ore in thousand tonnes."""
        return "т" if self.unit == "г/т" else "тыс. т"

    def metal(self, ore_kt: float, grade: float) -> float:
        """Contained metal in ``metal_unit`` for ``ore_kt`` thousand tonnes at ``grade``."""
        if self.unit == "г/т":
            return ore_kt * grade / 1000.0  # kt x g/t = kg; /1000 = t
        return ore_kt * grade / 100.0  # kt x % / 100 = kt


@dataclass(frozen=True)
class BodyKind:
    """How ore bodies of a profile are called, with the agreement forms templates need."""

    nom: str
    gen_pl: str
    traced: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """A deposit type: formation, minerals, alteration and grades that go together."""

    key: str
    kind_adj: str
    formations: tuple[str, ...]
    types: tuple[tuple[str, str], ...]
    minerals_main: tuple[str, ...]
    minerals_minor: tuple[str, ...]
    gangue: tuple[str, ...]
    compositions: tuple[str, ...]
    textures: tuple[str, ...]
    processes: tuple[str, ...]
    metasomatites: tuple[str, ...]
    hosts: tuple[str, ...]
    intrusions: tuple[str, ...]
    main: tuple[Component, Component]
    associated: tuple[str, ...]
    geochem: tuple[str, ...]
    body: BodyKind
    morphology: tuple[str, ...]
    temperature: tuple[int, int]
    depth: tuple[float, float]
    dating_mineral: str
    age_ma: tuple[float, float]
    recovery_processes: tuple[str, ...]
    schemes: tuple[str, ...]


# Genitive of element names used in geochemical lists.
ELEMENT_GEN: dict[str, str] = {
    "Au": "золота",
    "Ag": "серебра",
    "As": "мышьяка",
    "Sb": "сурьмы",
    "Hg": "ртути",
    "Se": "селена",
    "W": "вольфрама",
    "Bi": "висмута",
    "Cu": "меди",
    "Mo": "молибдена",
    "Zn": "цинка",
    "Pb": "свинца",
    "Mn": "марганца",
    "Te": "теллура",
}

VEIN = BodyKind(
    nom="жила",
    gen_pl="жил",
    traced="прослежена",
    names=tuple(
        "Главная Северная Южная Восточная Западная Промежуточная Диагональная Верхняя Новая "
        "Сопочная".split()
    ),
)
ZONE = BodyKind(
    nom="рудная зона",
    gen_pl="рудных зон",
    traced="прослежена",
    names=("Центральная", "Северная", "Южная", "Восточная", "Западная", "Ручьевая", "Новая"),
)
BODY = BodyKind(
    nom="рудное тело",
    gen_pl="рудных тел",
    traced="прослежено",
    names=("Центральное", "Северное", "Южное", "Восточное", "Западное", "Нижнее", "Верхнее"),
)

PROFILES: tuple[Profile, ...] = (
    Profile(
        key="epithermal_au_ag",
        kind_adj="золото-серебряное",
        formations=(
            "золото-серебряная малосульфидная",
            "золото-серебряная",
            "золото-адуляр-кварцевая",
        ),
        types=(
            ("эпитермальный тип низкой сульфидизации", "эпитермальному типу низкой сульфидизации"),
            ("адуляр-серицитовый тип", "адуляр-серицитовому типу"),
        ),
        minerals_main=(
            "самородное золото",
            "электрум",
            "кюстелит",
            "акантит",
            "пирит",
            "халькопирит",
            "арсенопирит",
        ),
        minerals_minor=(
            "сфалерит",
            "галенит",
            "пираргирит",
            "прустит",
            "науманнит",
            "полибазит",
            "блеклые руды",
            "гессит",
        ),
        gangue=("кварц", "адуляр", "кальцит", "гидрослюды", "хлорит", "каолинит"),
        compositions=(
            "кварц-адуляровые жилы",
            "кварцевые жилы",
            "кварц-карбонатные прожилки",
            "кварц-адуляр-гидрослюдистые брекчии",
        ),
        textures=("полосчатые", "колломорфные", "брекчиевые", "друзовые", "гребенчатые"),
        processes=("пропилитизация", "аргиллизация", "адуляризация", "окварцевание"),
        metasomatites=("кварц-адуляровые метасоматиты", "аргиллизиты", "вторичные кварциты"),
        hosts=(
            "андезиты",
            "андезибазальты",
            "дациты",
            "туфы андезитов",
            "игнимбриты риолитов",
            "лавобрекчии андезитов",
        ),
        intrusions=("субвулканические тела дацитов", "дайки андезитов", "экструзии риолитов"),
        main=(
            Component("Au", "золото", "золота", "г/т", 3.0, 45.0, 1),
            Component("Ag", "серебро", "серебра", "г/т", 12.0, 380.0, 1),
        ),
        associated=("медь", "свинец", "цинк", "селен", "теллур"),
        geochem=("Au", "Ag", "As", "Sb", "Hg", "Se"),
        body=VEIN,
        morphology=(
            "крутопадающие жилы с раздувами и пережимами",
            "жилы и жильные зоны линейного типа",
            "ветвящиеся жилы и прожилковые зоны",
        ),
        temperature=(160, 280),
        depth=(0.2, 1.0),
        dating_mineral="адуляра",
        age_ma=(8.0, 80.0),
        recovery_processes=("цианировании", "гравитационно-цианистой переработке"),
        schemes=("гравитационно-цианистая", "гравитационно-флотационная"),
    ),
    Profile(
        key="orogenic_au",
        kind_adj="золоторудное",
        formations=(
            "золото-кварцевая малосульфидная",
            "золото-сульфидно-кварцевая",
            "золото-кварцевая",
        ),
        types=(
            ("орогенный мезотермальный тип", "орогенному мезотермальному типу"),
            ("золото-кварцевый жильный тип", "золото-кварцевому жильному типу"),
        ),
        minerals_main=("самородное золото", "арсенопирит", "пирит", "пирротин", "шеелит"),
        minerals_minor=(
            "галенит",
            "сфалерит",
            "халькопирит",
            "блеклые руды",
            "висмутин",
            "антимонит",
            "ауростибит",
        ),
        gangue=("кварц", "анкерит", "серицит", "хлорит", "альбит", "кальцит"),
        compositions=(
            "кварцевые жилы",
            "прожилково-вкрапленные руды",
            "кварц-сульфидные жилы",
            "кварц-анкеритовые прожилки",
        ),
        textures=("массивные", "прожилковые", "вкрапленные", "брекчиевые", "полосчатые"),
        processes=("березитизация", "лиственитизация", "серицитизация", "окварцевание"),
        metasomatites=("березиты", "листвениты", "кварц-серицитовые метасоматиты"),
        hosts=(
            "алевролиты",
            "песчаники",
            "углеродистые сланцы",
            "аргиллиты",
            "гравелиты",
            "туфопесчаники",
        ),
        intrusions=("дайки диоритовых порфиритов", "штоки гранодиоритов", "дайки лампрофиров"),
        main=(
            Component("Au", "золото", "золота", "г/т", 2.0, 18.0, 1),
            Component("Ag", "серебро", "серебра", "г/т", 1.0, 14.0, 1),
        ),
        associated=("вольфрам", "висмут", "сурьма", "серебро"),
        geochem=("Au", "As", "W", "Sb", "Bi"),
        body=ZONE,
        morphology=(
            "минерализованные зоны дробления с кварцевыми жилами",
            "линейные штокверки и седловидные жилы",
            "пластообразные залежи согласные со слоистостью",
        ),
        temperature=(240, 380),
        depth=(2.0, 6.0),
        dating_mineral="серицита",
        age_ma=(95.0, 240.0),
        recovery_processes=("гравитационно-флотационной переработке", "цианировании"),
        schemes=("гравитационно-флотационная", "флотационно-цианистая"),
    ),
    Profile(
        key="porphyry_cu_au",
        kind_adj="медно-порфировое",
        formations=("медно-порфировая", "золото-медно-порфировая", "молибден-медно-порфировая"),
        types=(
            ("порфировый тип", "порфировому типу"),
            ("медно-порфировый тип", "медно-порфировому типу"),
        ),
        minerals_main=("халькопирит", "борнит", "молибденит", "пирит", "магнетит"),
        minerals_minor=(
            "самородное золото",
            "теннантит",
            "халькозин",
            "ковеллин",
            "сфалерит",
            "галенит",
            "гематит",
        ),
        gangue=("кварц", "ангидрит", "серицит", "биотит", "калиевый полевой шпат", "хлорит"),
        compositions=(
            "штокверковые руды",
            "прожилково-вкрапленные руды",
            "кварц-сульфидные прожилки",
            "кварц-магнетитовые прожилки",
        ),
        textures=("вкрапленные", "прожилковые", "прожилково-вкрапленные", "брекчиевые"),
        processes=("калишпатизация", "биотитизация", "пропилитизация", "серицитизация"),
        metasomatites=("кварц-серицитовые метасоматиты", "калишпатовые метасоматиты"),
        hosts=(
            "диориты",
            "кварцевые диориты",
            "гранодиорит-порфиры",
            "андезиты",
            "монцодиориты",
        ),
        intrusions=("штоки гранодиорит-порфиров", "дайки диоритовых порфиритов"),
        main=(
            Component("Cu", "медь", "меди", "%", 0.25, 1.4, 2),
            Component("Au", "золото", "золота", "г/т", 0.15, 1.2, 2),
        ),
        associated=("молибден", "серебро", "рений", "селен"),
        geochem=("Cu", "Mo", "Au", "Ag", "Zn", "Pb"),
        body=BODY,
        morphology=(
            "штокверк изометричной в плане формы",
            "штокверковые тела с постепенными границами",
            "столбообразные рудные тела",
        ),
        temperature=(300, 560),
        depth=(1.5, 4.0),
        dating_mineral="молибденита",
        age_ma=(20.0, 160.0),
        recovery_processes=("коллективной флотации", "селективной флотации"),
        schemes=("флотационная", "коллективно-селективная флотационная"),
    ),
    Profile(
        key="ag_polymetallic",
        kind_adj="серебро-полиметаллическое",
        formations=(
            "серебро-полиметаллическая",
            "золото-серебро-полиметаллическая",
            "серебро-сульфосольная",
        ),
        types=(
            (
                "эпитермальный тип промежуточной сульфидизации",
                "эпитермальному типу промежуточной сульфидизации",
            ),
            ("жильный серебро-полиметаллический тип", "жильному серебро-полиметаллическому типу"),
        ),
        minerals_main=("галенит", "сфалерит", "халькопирит", "пираргирит", "фрейбергит", "пирит"),
        minerals_minor=(
            "акантит",
            "самородное серебро",
            "миаргирит",
            "буланжерит",
            "арсенопирит",
            "электрум",
        ),
        gangue=("кварц", "родохрозит", "кальцит", "родонит", "флюорит", "хлорит"),
        compositions=(
            "кварц-сульфидные жилы",
            "кварц-карбонат-сульфидные жилы",
            "кварц-родохрозитовые жилы",
            "сульфидные брекчии",
        ),
        textures=("полосчатые", "брекчиевые", "массивные", "колломорфные", "вкрапленные"),
        processes=("аргиллизация", "пропилитизация", "окварцевание", "серицитизация"),
        metasomatites=("аргиллизиты", "кварц-серицитовые метасоматиты", "пропилиты"),
        hosts=("риолиты", "дациты", "туфы риолитов", "игнимбриты", "песчаники", "алевролиты"),
        intrusions=("дайки риолитов", "субвулканические тела риолитов", "дайки диабазов"),
        main=(
            Component("Ag", "серебро", "серебра", "г/т", 90.0, 850.0, 1),
            Component("Pb", "свинец", "свинца", "%", 0.8, 6.5, 2),
        ),
        associated=("цинк", "золото", "медь", "кадмий", "индий"),
        geochem=("Ag", "Pb", "Zn", "Cu", "Sb", "Mn"),
        body=VEIN,
        morphology=(
            "жилы и жильные зоны с резкими контактами",
            "крутопадающие линзовидные жилы",
            "кулисообразно построенные жилы",
        ),
        temperature=(190, 330),
        depth=(0.5, 1.5),
        dating_mineral="серицита",
        age_ma=(70.0, 110.0),
        recovery_processes=("селективной флотации", "коллективной флотации"),
        schemes=("флотационная", "гравитационно-флотационная"),
    ),
)

REGIONS: tuple[Region, ...] = (
    Region(
        nom="Камчатский край",
        gen="Камчатского края",
        districts=("Быстринский", "Мильковский", "Елизовский", "Усть-Большерецкий", "Пенжинский"),
        settlements=("с. Эссо", "с. Мильково", "пос. Анавгай", "пос. Козыревск", "с. Тигиль"),
        belts=(
            Belt(
                "Центрально-Камчатский вулканический пояс",
                "Центрально-Камчатского вулканического пояса",
            ),
            Belt("Южно-Камчатский вулканический пояс", "Южно-Камчатского вулканического пояса"),
        ),
        settings=(
            Setting("островодужная обстановка", "островодужной обстановке"),
            Setting("надсубдукционная обстановка", "надсубдукционной обстановке"),
        ),
        zones=("Центрально-Камчатская", "Срединная", "Южно-Камчатская"),
        provinces=("Камчатская", "Корякско-Камчатская"),
        suites=(
            "алнейской серии",
            "кирганикской свиты",
            "березовской свиты",
            "анавгайской свиты",
            "кахтунской свиты",
            "тумрокской свиты",
        ),
        ages=("миоцена", "плиоцена", "олигоцена", "эоцена"),
        organisation="АО «Камчатгеология»",
        lat=(53, 58),
        lon=(156, 162),
        sheet_prefix="O-57",
    ),
    Region(
        nom="Магаданская область",
        gen="Магаданской области",
        districts=("Омсукчанский", "Тенькинский", "Сусуманский", "Ягоднинский", "Среднеканский"),
        settlements=("пос. Омсукчан", "пос. Усть-Омчуг", "пос. Ягодное", "г. Сусуман"),
        belts=(
            Belt("Охотско-Чукотский вулканогенный пояс", "Охотско-Чукотского вулканогенного пояса"),
            Belt("Яно-Колымский складчатый пояс", "Яно-Колымского складчатого пояса"),
        ),
        settings=(
            Setting(
                "обстановка активной континентальной окраины",
                "обстановке активной континентальной окраины",
            ),
            Setting("коллизионная обстановка", "коллизионной обстановке"),
        ),
        zones=("Омсукчанская", "Аян-Юряхская", "Балыгычано-Сугойская"),
        provinces=("Яно-Колымская", "Охотско-Чукотская"),
        suites=(
            "ольской свиты",
            "наяханской свиты",
            "хольчанской свиты",
            "улынской свиты",
            "атканской свиты",
            "омсукчанской серии",
        ),
        ages=("позднего мела", "раннего мела", "поздней юры", "позднего триаса"),
        organisation="ФГУГП «Магадангеология»",
        lat=(59, 64),
        lon=(147, 156),
        sheet_prefix="P-56",
    ),
    Region(
        nom="Чукотский автономный округ",
        gen="Чукотского автономного округа",
        districts=("Билибинский", "Чаунский", "Анадырский", "Иультинский"),
        settlements=("г. Билибино", "пос. Эгвекинот", "г. Певек", "с. Марково"),
        belts=(
            Belt("Охотско-Чукотский вулканогенный пояс", "Охотско-Чукотского вулканогенного пояса"),
            Belt("Чукотская складчатая система", "Чукотской складчатой системы"),
        ),
        settings=(
            Setting(
                "обстановка активной континентальной окраины",
                "обстановке активной континентальной окраины",
            ),
            Setting("постколлизионная обстановка", "постколлизионной обстановке"),
        ),
        zones=("Анюйская", "Центрально-Чукотская", "Чаунская"),
        provinces=("Чукотская", "Охотско-Чукотская"),
        suites=(
            "пыкарваамской свиты",
            "эмунэретской свиты",
            "коэквуньской свиты",
            "леурваамской свиты",
        ),
        ages=("позднего мела", "раннего мела", "позднего триаса"),
        organisation="ГП «Чукотгеология»",
        lat=(64, 69),
        lon=(166, 178),
        sheet_prefix="Q-58",
    ),
    Region(
        nom="Хабаровский край",
        gen="Хабаровского края",
        districts=("Охотский", "Аяно-Майский", "Тугуро-Чумиканский", "Ульчский"),
        settlements=("пос. Охотск", "с. Аян", "с. Чумикан", "пос. Херпучи"),
        belts=(
            Belt("Охотско-Чукотский вулканогенный пояс", "Охотско-Чукотского вулканогенного пояса"),
            Belt("Монголо-Охотский складчатый пояс", "Монголо-Охотского складчатого пояса"),
        ),
        settings=(
            Setting(
                "обстановка активной континентальной окраины",
                "обстановке активной континентальной окраины",
            ),
            Setting("трансформная окраина", "трансформной окраине"),
        ),
        zones=("Улья-Охотская", "Кухтуйская", "Нижнеамурская"),
        provinces=("Охотская", "Сихотэ-Алиньская"),
        suites=("хакаринской свиты", "ульинской серии", "учуликанской свиты", "амкинской свиты"),
        ages=("позднего мела", "раннего мела", "поздней юры"),
        organisation="АО «Хабаровская горно-геологическая компания»",
        lat=(51, 60),
        lon=(135, 143),
        sheet_prefix="O-54",
    ),
    Region(
        nom="Забайкальский край",
        gen="Забайкальского края",
        districts=("Балейский", "Газимуро-Заводский", "Шелопугинский", "Нерчинский"),
        settlements=("г. Балей", "с. Газимурский Завод", "с. Шелопугино", "г. Нерчинск"),
        belts=(
            Belt("Монголо-Охотский орогенный пояс", "Монголо-Охотского орогенного пояса"),
            Belt("Агинская складчатая зона", "Агинской складчатой зоны"),
        ),
        settings=(
            Setting("внутриплитная обстановка", "внутриплитной обстановке"),
            Setting("постколлизионная обстановка", "постколлизионной обстановке"),
        ),
        zones=("Балей-Тасеевская", "Газимуро-Урюмканская", "Восточно-Забайкальская"),
        provinces=("Монголо-Охотская", "Восточно-Забайкальская"),
        suites=("шадоронской серии", "тургинской свиты", "ундинской свиты", "газимурской свиты"),
        ages=("поздней юры", "средней юры", "раннего мела", "перми"),
        organisation="ФГУГП «Читагеолсъёмка»",
        lat=(50, 53),
        lon=(116, 120),
        sheet_prefix="M-50",
    ),
    Region(
        nom="Амурская область",
        gen="Амурской области",
        districts=("Зейский", "Селемджинский", "Тындинский", "Магдагачинский"),
        settlements=("г. Зея", "пос. Экимчан", "пос. Токур", "г. Тында"),
        belts=(
            Belt("Монголо-Охотский складчатый пояс", "Монголо-Охотского складчатого пояса"),
            Belt(
                "Умлекано-Огоджинский вулканический пояс",
                "Умлекано-Огоджинского вулканического пояса",
            ),
        ),
        settings=(
            Setting("коллизионная обстановка", "коллизионной обстановке"),
            Setting(
                "обстановка активной континентальной окраины",
                "обстановке активной континентальной окраины",
            ),
        ),
        zones=("Верхнеселемджинская", "Тукурингра-Джагдинская", "Зейская"),
        provinces=("Амурская", "Монголо-Охотская"),
        suites=("талданской свиты", "иканской серии", "гилюйской серии", "ольдойской свиты"),
        ages=("поздней юры", "средней юры", "позднего палеозоя", "раннего мела"),
        organisation="ОАО «Амургеология»",
        lat=(52, 55),
        lon=(125, 133),
        sheet_prefix="N-52",
    ),
)

DEPOSIT_NAMES: tuple[DepositName, ...] = (
    DepositName("Агинское", "Агинский", "aginskoe"),
    DepositName("Кумрочское", "Кумрочский", "kumrochskoe"),
    DepositName("Асачинское", "Асачинский", "asachinskoe"),
    DepositName("Родниковое", "Родниковый", "rodnikovoe"),
    DepositName("Озерновское", "Озерновский", "ozernovskoe"),
    DepositName("Бараньевское", "Бараньевский", "baranevskoe"),
    DepositName("Кедровое", "Кедровый", "kedrovoe"),
    DepositName("Сопочное", "Сопочный", "sopochnoe"),
    DepositName("Ольховое", "Ольховый", "olkhovoe"),
    DepositName("Светлое", "Светлый", "svetloe"),
    DepositName("Гранитное", "Гранитный", "granitnoe"),
    DepositName("Лунное", "Лунный", "lunnoe"),
    DepositName("Ирбычанское", "Ирбычанский", "irbychanskoe"),
    DepositName("Купольное", "Купольный", "kupolnoe"),
    DepositName("Павликовское", "Павликовский", "pavlikovskoe"),
    DepositName("Школьное", "Школьный", "shkolnoe"),
    DepositName("Ветвистое", "Ветвистый", "vetvistoe"),
    DepositName("Утёсное", "Утёсный", "utyosnoe"),
    DepositName("Каменистое", "Каменистый", "kamenistoe"),
    DepositName("Кварцевое", "Кварцевый", "kvartsevoe"),
    DepositName("Тихое", "Тихий", "tikhoe"),
    DepositName("Перевальное", "Перевальный", "perevalnoe"),
    DepositName("Речное", "Речной", "rechnoe"),
    DepositName("Малахитовое", "Малахитовый", "malakhitovoe"),
    DepositName("Бургалийское", "Бургалийский", "burgaliyskoe"),
    DepositName("Эвенское", "Эвенский", "evenskoe"),
    DepositName("Хаканджинское", "Хаканджинский", "khakandzhinskoe"),
    DepositName("Нявленгинское", "Нявленгинский", "nyavlenginskoe"),
    DepositName("Среднеканское", "Среднеканский", "srednekanskoe"),
    DepositName("Токурское", "Токурский", "tokurskoe"),
    DepositName("Покровское", "Покровский", "pokrovskoe"),
    DepositName("Пионерское", "Пионерский", "pionerskoe"),
)

SURNAMES: tuple[str, ...] = tuple(
    "Иванов Петров Сидоров Кузнецов Смирнов Волков Морозов Соколов Лебедев Козлов Новиков "
    "Егоров Павлов Степанов Николаев Орлов Андреев Макаров Захаров Зайцев Борисов Яковлев "
    "Григорьев Романов Сергеев Кузьмин Фролов Дмитриев Гусев Ильин Максимов Поляков Сорокин "
    "Шевченко Белов Тарасов".split()
)
INITIALS = "АБВГДЕИКЛМНОПРСТФЮЯ"

JOURNALS: tuple[str, ...] = (
    "Тихоокеанская геология",
    "Геология рудных месторождений",
    "Руды и металлы",
    "Отечественная геология",
    "Разведка и охрана недр",
    "Вестник КРАУНЦ. Науки о Земле",
)

FUNDS: tuple[str, ...] = (
    "ФГБУ «Росгеолфонд»",
    "ФБУ «ТФГИ по Дальневосточному федеральному округу»",
    "ФГБУ «ВСЕГЕИ»",
)

# Directions as used after «к» (dative) and as a dip azimuth (accusative).
DIRECTIONS_DAT: tuple[str, ...] = tuple(
    "северу северо-востоку востоку юго-востоку югу юго-западу западу северо-западу".split()
)
DIRECTIONS_ACC: tuple[str, ...] = tuple(d.removesuffix("у") for d in DIRECTIONS_DAT)
STRIKES_GEN: tuple[str, ...] = tuple(
    "северо-восточного северо-западного субмеридионального субширотного".split()
)
ROMAN: tuple[str, ...] = tuple("I II III IV V VI VII VIII IX X XI XII XIII XIV XV XVI".split())
