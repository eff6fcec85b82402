"""Load a model family's pretrained (or randomly initialised) backbone and its tokenizer from the
``model`` config, from a folder, the hub, a registry package or a GGUF file."""

from pathlib import Path

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from tasks.cache import cache_dir, extract_folder, replace_atomically


def model_path(cfg: DictConfig) -> str:
    """A local folder or hub name: ``cfg.path`` if set, else the folder inside a registry package."""
    if cfg.get("path"):
        path = str(cfg.path)
        if Path(path).expanduser().exists():
            return str(Path(path).expanduser())
        if path.startswith((".", "/", "~")):
            raise FileNotFoundError(f"model.path {path!r} does not exist; give a model folder or a hub name")
        return path  # a hub name such as "bert-base-uncased"
    src = cfg.get("package")
    if not src:
        raise ValueError("the model config needs `path` (folder or hub name), `package`, or `config`")
    return str(extract_folder(src.name, src.version, src.folder))


def gguf_folder(cfg: DictConfig) -> str:
    """A regular model folder made once from a GGUF file (de-quantized to fp32, ~30 s), cached:
    later runs load it in about a second. transformers refuses ``save_pretrained`` on a model loaded
    from GGUF, so the weights move into a model built from its config first."""
    source = Path(model_path(cfg))
    target = cache_dir() / "models" / f"{cfg.name}-{Path(cfg.gguf_file).stem}"
    if (target / ".complete").exists():
        return str(target)
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError:
        raise ImportError(f"model {cfg.name} ships as GGUF: pip install gguf (or pip install -e '.[llm]')") from None
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=cfg.gguf_file, torch_dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=cfg.gguf_file)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
    clean.load_state_dict(loaded.state_dict())

    def write(tmp: Path) -> None:
        clean.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / ".complete").touch()

    replace_atomically(target, write)
    return str(target)


def quantization(cfg: DictConfig) -> dict:
    """``model.quantization=nf4``: QLoRA's frozen base, 4-bit NormalFloat with double quantization
    and bf16 compute (bitsandbytes, CUDA only)."""
    kind = cfg.get("quantization")
    if not kind:
        return {}
    if kind != "nf4":
        raise ValueError(f"model.quantization must be null or nf4, got {kind!r}")
    if not torch.cuda.is_available():
        raise ValueError(
            "model.quantization=nf4 (QLoRA) needs a CUDA GPU: bitsandbytes 4-bit layers have no CPU kernels "
            "for training. Drop model.quantization to train LoRA on the full-precision model."
        )
    from transformers import BitsAndBytesConfig

    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )}  # fmt: skip


def family(cfg: DictConfig) -> type:
    """The model family's module class, named by the model config's ``_target_``."""
    target = cfg.get("_target_")
    if not target:
        raise ValueError("the model config needs `_target_`: cl.models.classifier.ClassifierModule or "
                         "cl.models.causal_lm.CausalLMModule")  # fmt: skip
    try:
        return get_class(target)
    except Exception as err:
        raise ValueError(f"model._target_={target!r} is not a model family: {err}") from None


def load_backbone(cfg: DictConfig, auto_model) -> tuple[PreTrainedModel, object | None]:
    """Return ``(backbone, tokenizer)`` loaded with ``auto_model`` (``AutoModel``,
    ``AutoModelForCausalLM``); a model built from ``cfg.config`` is random and has no tokenizer.

    ``gradient_checkpointing: true`` recomputes activations in the backward pass (less memory,
    about a third more compute); ``compile: true`` compiles the backbone's forward with
    ``torch.compile`` (worth it on GPUs for long runs; the first steps pay for compilation).
    """
    quantized = quantization(cfg)
    if cfg.get("config") is not None:
        backbone, tokenizer = auto_model.from_config(instantiate(cfg.config)), None
    else:
        path = gguf_folder(cfg) if cfg.get("gguf_file") else model_path(cfg)
        tokenizer = AutoTokenizer.from_pretrained(path)
        load = dict(cfg.get("load_kwargs") or {})
        if "torch_dtype" in load:  # a string in YAML ("bfloat16")
            load["torch_dtype"] = getattr(torch, load["torch_dtype"])
        backbone = auto_model.from_pretrained(path, **load, **quantized)
    if cfg.get("gradient_checkpointing"):
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.get("compile"):
        backbone.compile()  # in place: parameter names and state dicts stay the same
    return backbone, tokenizer
