"""Build the pretrained (or randomly initialised) encoder and its tokenizer from the ``model`` config."""

import os
import shutil
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from cl.fetch import cache_dir, extract_folder


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
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    clean.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    (target / ".complete").touch()
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


def is_causal(cfg: DictConfig) -> bool:
    return cfg.get("kind", "encoder") == "causal"


def build_encoder(cfg: DictConfig) -> tuple[PreTrainedModel, object | None]:
    """Return ``(encoder, tokenizer)``; a model built from ``cfg.config`` is random and has no tokenizer.

    ``gradient_checkpointing: true`` recomputes activations in the backward pass (less memory,
    about a third more compute); ``compile: true`` compiles the encoder's forward with
    ``torch.compile`` (worth it on GPUs for long runs; the first steps pay for compilation).
    """
    kind = cfg.get("kind", "encoder")
    if kind not in ("encoder", "causal"):
        raise ValueError(f"model.kind must be encoder or causal, got {kind!r}")
    auto = AutoModelForCausalLM if is_causal(cfg) else AutoModel
    quantized = quantization(cfg)
    if cfg.get("config") is not None:
        encoder, tokenizer = auto.from_config(instantiate(cfg.config)), None
    else:
        path = gguf_folder(cfg) if cfg.get("gguf_file") else model_path(cfg)
        tokenizer = AutoTokenizer.from_pretrained(path)
        load = dict(cfg.get("load_kwargs") or {})
        if "torch_dtype" in load:  # a string in YAML ("bfloat16")
            load["torch_dtype"] = getattr(torch, load["torch_dtype"])
        encoder = auto.from_pretrained(path, **load, **quantized)
    if cfg.get("gradient_checkpointing"):
        encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.get("compile"):
        encoder.compile()  # in place: parameter names and state dicts stay the same
    return encoder, tokenizer
