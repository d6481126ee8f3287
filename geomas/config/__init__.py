"""Configuration models: one pydantic model per concern, loaded from configs/*.yaml.

YAML files give values; these models define what exists and the defaults. Every model forbids
unknown keys so that a typo in a config file is an error, not a silently ignored setting.

Modules by concern: `base` (strict model, YAML loader), `data` (ingest ... formats), `training`
(SFT with Hugging Face field names, LoRA, quantisation, evaluation, promotion), `retrain`,
`kubernetes` (pods per step), `panel` (the control panel) and `run` (a whole run config
file).
"""

from geomas.config.base import Profile, StrictModel, cyrillic_defaults, load_config, load_yaml
from geomas.config.data import (
    ChunkKind,
    CleanConfig,
    DataPipelineConfig,
    DomainProfile,
    FormatConfig,
    FormatType,
    HygieneConfig,
    IngestConfig,
    JudgeConfig,
    LegacyDocConfig,
    LineageMode,
    NerInferenceConfig,
    NerTrainConfig,
    QAConfig,
    SplitConfig,
    TeacherConfig,
    TextQualityConfig,
    ValidationConfig,
)
from geomas.config.kubernetes import (
    K8sImages,
    K8sOrchestratorOptions,
    K8sPodConfig,
    K8sResources,
    K8sSecurity,
    KubernetesConfig,
)
from geomas.config.panel import PanelConfig
from geomas.config.retrain import RetrainConfig
from geomas.config.run import ProjectConfig, RunConfig
from geomas.config.training import (
    EvalConfig,
    LoraSettings,
    MemoryProfile,
    ModelAlias,
    ModelAliases,
    PromotionConfig,
    QuantSettings,
    SFTMethod,
    TrainClassifierConfig,
    TrainingPipelineConfig,
    TrainSFTConfig,
)

__all__ = [
    "ChunkKind", "CleanConfig", "DataPipelineConfig", "DomainProfile", "EvalConfig",
    "FormatConfig", "FormatType", "HygieneConfig", "JudgeConfig", "LegacyDocConfig",
    "IngestConfig", "K8sImages", "K8sOrchestratorOptions", "K8sPodConfig", "K8sResources",
    "K8sSecurity", "KubernetesConfig", "LineageMode", "LoraSettings", "MemoryProfile",
    "ModelAlias", "ModelAliases", "NerInferenceConfig", "NerTrainConfig", "PanelConfig", "Profile",
    "ProjectConfig", "PromotionConfig", "QAConfig", "QuantSettings", "RetrainConfig",
    "RunConfig", "SFTMethod", "SplitConfig", "StrictModel", "TeacherConfig",
    "TextQualityConfig", "TrainClassifierConfig", "TrainSFTConfig", "TrainingPipelineConfig",
    "ValidationConfig",
    "cyrillic_defaults", "load_config", "load_yaml",
]
