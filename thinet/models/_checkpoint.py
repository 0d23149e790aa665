"""Loading `create_model(..., checkpoint=path)`: a state_dict, {"model": state_dict}, or a whole nn.Module.

A pruned model no longer matches its constructor's shapes, so a pickled whole module
(`torch.save(model, path)`) is returned as is, taking precedence over the constructor.
"""
from __future__ import annotations

import os
import pickle
from typing import Any, Mapping

import torch
import torch.nn as nn

STATE_DICT_KEYS = ("model", "state_dict")


def read_checkpoint(path: str | os.PathLike) -> nn.Module | Mapping[str, torch.Tensor]:
    """Return the whole module or the state_dict stored at `path` (on CPU)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Whole pickled modules need full unpickling; the user chose this file.
        obj = _load_unrestricted(path)
    except Exception as exc:  # corrupt / not a torch file
        raise ValueError(f"checkpoint {path} is not a readable torch file: {exc}") from exc
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            if key in obj:
                obj = obj[key]
                break
    if isinstance(obj, nn.Module):
        return obj
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return _strip_prefix(obj, "module.")
    raise ValueError(
        f"checkpoint {path} holds neither an nn.Module, a state_dict nor a dict with key "
        f"{' or '.join(map(repr, STATE_DICT_KEYS))} (found {type(obj).__name__})"
    )


def _load_unrestricted(path: str) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"checkpoint {path} could not be unpickled: {exc}") from exc


def _strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """DataParallel checkpoints prefix every key with 'module.'."""
    if all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def load_state_dict_into(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Strict load; a mismatch is a ValueError naming the file and the first offending keys."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    resized = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or resized:
        details = []
        if resized:
            k = resized[0]
            details.append(
                f"{len(resized)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
            )
        if missing:
            details.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
        raise ValueError(
            f"checkpoint {os.fspath(path)} does not fit {type(model).__name__}: {'; '.join(details)}. "
            "A pruned model must be saved whole (torch.save(model, path))."
        )
    model.load_state_dict(state, strict=True)
