"""The 17 geological entity types of the original geomas tool."""

from __future__ import annotations

#: Entity types in the order of the original tool's guide, with their Russian descriptions.
GEO_ENTITY_TYPES: dict[str, str] = {
    "GENERAL_INFO": "Общие сведения о месторождении",
    "ORE_COMPONENT": "Полезные компоненты руд",
    "RESOURCE_POTENTIAL": "Запасы и ресурсный потенциал",
    "ORE_FORMATION": "Рудная формация / тип оруденения",
    "MINERALOGICAL": "Минералогические признаки",
    "TECHNOLOGICAL": "Технологические характеристики",
    "STRATIGRAPHY": "Стратиграфия и типы пород",
    "STRUCTURAL_TECTONIC": "Структурно-тектонические характеристики",
    "ORE_BODIES": "Морфология и залегание рудных тел",
    "ORE_COMPOSITION": "Состав руд",
    "GEODYNAMIC": "Геодинамические характеристики",
    "GEO_CHEMICAL": "Геохимические признаки",
    "METALLOGENIC_CHAR": "Металлогенические характеристики",
    "METASOMATIC": "Метасоматические изменения",
    "FORMATION_CONDITIONS": "Условия формирования",
    "STUDY_INFO": "Изученность месторождения",
    "INFO_SOURCES": "Источники информации",
}

GEO_LABELS: tuple[str, ...] = tuple(GEO_ENTITY_TYPES)
