#!/usr/bin/python3
"""Loads sfn-exported TorchScript models with plain PyTorch and checks their logits.

Usage: check_torchscript.py CASE_DIR [CASE_DIR ...]

Each CASE_DIR (written by tests/searcher/test_export.cpp) holds
  model/          an exported model folder (model.pt, manifest.json, manifest.sig)
  input.f32       float32 little-endian input batch, already normalized
  logits.f32      float32 logits the in-library SubNet computed for that batch
  case.json       {"input_shape": [N, C, H, W], "logits_shape": [N, K], "atol": 1e-5}

Uses nothing from sfn: only torch and the standard library, as a deployment target would.
Exit code 0 when every case matches, 1 on a mismatch, 2 on any other error.
"""
import hashlib
import json
import os
import sys

import torch


def read_f32(path, shape):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    return torch.frombuffer(data, dtype=torch.float32).reshape(shape)


def check_case(case_dir):
    with open(os.path.join(case_dir, "case.json")) as f:
        case = json.load(f)
    model_dir = os.path.join(case_dir, "model")
    model_path = os.path.join(model_dir, "model.pt")

    # The manifest's digest must describe the file we are about to load.
    with open(os.path.join(model_dir, "manifest.json")) as f:
        manifest = json.load(f)
    with open(model_path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != manifest["files"]["model.pt"]["sha256"]:
        print(f"{case_dir}: model.pt SHA-256 {digest} does not match manifest.json")
        return False
    if list(manifest["input"]["shape"][1:]) != list(case["input_shape"][1:]):
        print(f"{case_dir}: manifest input shape {manifest['input']['shape']} "
              f"does not fit the test input {case['input_shape']}")
        return False

    model = torch.jit.load(model_path, map_location="cpu")
    model.eval()
    x = read_f32(os.path.join(case_dir, "input.f32"), case["input_shape"])
    expected = read_f32(os.path.join(case_dir, "logits.f32"), case["logits_shape"])
    with torch.no_grad():
        got = model(x)
    if tuple(got.shape) != tuple(expected.shape):
        print(f"{case_dir}: logits shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
        return False
    diff = (got - expected).abs().max().item()
    ok = torch.allclose(got, expected, rtol=0.0, atol=case["atol"])
    print(f"{case_dir}: {manifest['architecture']['subnet']} "
          f"max |logit diff| = {diff:.3g} {'ok' if ok else 'MISMATCH'}")
    return ok


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    print(f"torch {torch.__version__}")
    try:
        results = [check_case(d) for d in argv[1:]]
    except Exception as e:  # any failure to load or run is a failed check, with its reason
        print(f"error: {type(e).__name__}: {e}")
        return 2
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
