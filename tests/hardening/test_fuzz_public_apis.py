"""Hypothesis fuzzing of the public APIs: every call gives the right answer or a clear error.

"Clear error" means ``TypeError`` or ``ValueError`` (``CheckpointError`` is one) for bad
arguments, and ``FileNotFoundError`` / ``FileExistsError`` for files — never a ``RuntimeError``,
``ZeroDivisionError``, ``KeyError`` or library error from deep inside, and never a silently wrong
result. Sizes stay tiny so that the suite is fast under the ``ci`` profile.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from treeattn.data.degradations import AWGN
from treeattn.data.io import read_image, write_image
from treeattn.layers import HiIRLayer
from treeattn.metrics import psnr, ssim
from treeattn.models import CheckpointError, create_model, from_pretrained, save_pretrained
from treeattn.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from treeattn.ops.tiling import tiled_apply

CLEAR = (TypeError, ValueError)
_TINY_SR = {"dim": 8, "depths": (1,), "num_heads": 2, "upsampler_dim": 4, "patch_sizes": (2, 4)}
_DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.int64, torch.uint8]

# Values a new user might pass for anything: right and wrong types, edge values.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "no", "yes", "True", "16", "dot", "v3", "pre"]),
    st.lists(st.integers(-1, 9), max_size=3),
    st.tuples(st.integers(0, 9), st.integers(0, 9)),
)


def _image(shape, dtype, generator_seed=0):
    generator = torch.Generator().manual_seed(generator_seed)
    x = torch.rand(shape, generator=generator)
    return (x * 255).to(dtype) if not dtype.is_floating_point else x.to(dtype)


_LAYER_ARGS = {
    "dim": 8,
    "num_heads": 2,
    "patch_sizes": (2, 4),
    "shift": False,
    "variant": "v3",
    "norm": "pre",
    "ffn_ratio": 2.0,
    "drop_path": 0.0,
    "level": 0,
}


@given(field=st.sampled_from(sorted(_LAYER_ARGS)), value=junk)
def test_hiir_layer_constructor(field, value):
    """One argument replaced by anything: a clear error, or a value of the right kind."""
    try:
        layer = HiIRLayer(**{**_LAYER_ARGS, field: value})
    except CLEAR:
        return
    default = _LAYER_ARGS[field]
    if isinstance(default, (bool, int, str)):
        assert type(value) is type(default), f"{field}={value!r} was accepted"
    x = torch.rand(1, layer.dim, 5, 3)
    with torch.no_grad():
        assert layer(x).shape == x.shape


_LAYER = HiIRLayer(8, 2, (2, 4)).eval()


@given(
    shape=st.tuples(st.integers(0, 2), st.integers(1, 9), st.integers(0, 9), st.integers(0, 9)),
    dtype=st.sampled_from(_DTYPES),
)
def test_hiir_layer_forward(shape, dtype):
    x = _image(shape, dtype)
    try:
        with torch.no_grad():
            out = _LAYER(x)
    except CLEAR:
        assert shape[1] != 8 or min(shape) == 0 or not dtype.is_floating_point
        return
    assert out.shape == x.shape and out.dtype == dtype
    with torch.no_grad():
        assert torch.equal(out, _LAYER(x.float()).to(dtype))  # computed in fp32, cast back


_FIELDS = [
    "task",
    "scale",
    "dim",
    "depths",
    "num_heads",
    "patch_sizes",
    "img_mean",
    "global_residual",
    "shift",
    "attn_type",
    "pos_bias",
    "ffn_ratio",
    "drop_path",
    "backend",
    "init",
    "variant",
]


@given(field=st.sampled_from(_FIELDS), value=junk)
def test_create_model_overrides(field, value):
    try:
        model = create_model("hiir_sr_tiny_x2", **{**_TINY_SR, field: value})
    except CLEAR:
        return
    x = torch.rand(1, model.meta.in_chans, 3, 5)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (1, model.meta.out_chans, 3 * model.meta.scale, 5 * model.meta.scale)


@given(name=junk)
def test_create_model_names(name):
    with pytest.raises(CLEAR):
        create_model(name)


_MODELS = {
    "sr": create_model("hiir_sr_tiny_x2", **_TINY_SR).eval(),
    "unet": create_model(
        "hiir_unet_tiny",
        dims=(4, 8),
        depths=(1, 1),
        decoder_depths=(1,),
        num_heads=(1, 1),
        patch_sizes=((2, 4), (2, 4)),
    ).eval(),
}


@given(
    kind=st.sampled_from(sorted(_MODELS)),
    shape=st.tuples(st.integers(0, 2), st.integers(1, 4), st.integers(0, 7), st.integers(0, 7)),
    dtype=st.sampled_from(_DTYPES),
)
def test_model_forward(kind, shape, dtype):
    model = _MODELS[kind]
    x = _image(shape, dtype)
    try:
        with torch.no_grad():
            out = model(x)
    except CLEAR:
        assert shape[1] != 3 or min(shape) == 0 or not dtype.is_floating_point
        return
    scale = model.meta.scale
    assert out.shape == (shape[0], 3, shape[2] * scale, shape[3] * scale)
    assert out.dtype == dtype


def _nearest(scale):
    def fn(t):
        return torch.nn.functional.interpolate(t, scale_factor=scale, mode="nearest")

    return fn


@given(
    tile=st.one_of(st.integers(-1, 12), junk),
    overlap=st.one_of(st.integers(-1, 6), junk),
    blend=st.one_of(st.none(), st.integers(-1, 6), junk),
    scale=st.one_of(st.integers(1, 3), junk),
    size=st.tuples(st.integers(1, 13), st.integers(1, 13)),
)
def test_tiled_apply(tile, overlap, blend, scale, size):
    x = torch.rand(1, 2, *size)
    fn = _nearest(scale if isinstance(scale, int) and not isinstance(scale, bool) else 1)
    try:
        out = tiled_apply(fn, x, tile=tile, overlap=overlap, blend=blend, scale=scale)
    except CLEAR:
        return
    torch.testing.assert_close(out, fn(x))


@given(
    shape=st.sampled_from([(3, 16, 16), (2, 3, 16, 16), (1, 16, 16), (3, 0, 16), (16, 16)]),
    dtype=st.sampled_from(_DTYPES),
    range_max=st.sampled_from([1.0, 255.0]),
    crop_border=st.one_of(st.integers(-1, 9), junk),
    y_channel=st.one_of(st.booleans(), junk),
    metric=st.sampled_from([psnr, ssim]),
)
def test_metrics(shape, dtype, range_max, crop_border, y_channel, metric):
    target = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * range_max
    pred = (target * 0.9).to(dtype)
    target = target.to(dtype)
    try:
        value = metric(pred, target, crop_border=crop_border, y_channel=y_channel)
    except CLEAR:
        return
    assert range_max == 1.0 and dtype.is_floating_point, "0-255 or integer data gave a number"
    assert torch.isfinite(value).all()


@given(data=st.binary(max_size=200))
def test_read_image_of_arbitrary_bytes(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.png"
        path.write_bytes(data)
        try:
            img = read_image(path)
        except CLEAR:
            return
    assert img.dtype == torch.float32 and img.min() >= 0.0 and img.max() <= 1.0


@given(
    shape=st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 4)),
    nan=st.booleans(),
    suffix=st.sampled_from([".png", ".jpg", ".txt"]),
)
def test_write_image_round_trip(shape, nan, suffix):
    img = torch.rand(shape)
    if nan and img.numel():
        img.view(-1)[0] = float("nan")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"x{suffix}"
        try:
            write_image(path, img)
        except CLEAR:
            return
        assert not (nan and img.numel()), "NaN was written as a pixel level"
        back = read_image(path)
    assert back.shape == img.shape
    if suffix == ".png":
        assert (back - img).abs().max() <= 0.5 / 255 + 1e-6


@given(sigma=junk, sigma_range=st.one_of(st.none(), junk))
def test_awgn_arguments(sigma, sigma_range):
    try:
        noise = AWGN(sigma=sigma, sigma_range=sigma_range)
    except CLEAR:
        return
    out = noise(torch.rand(1, 4, 4), torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()


_SAVED = Path(tempfile.mkdtemp(prefix="treeattn-fuzz-"))
save_pretrained(_MODELS["sr"], _SAVED)


def _copy_checkpoint(folder: Path) -> None:
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        (folder / name).write_bytes((_SAVED / name).read_bytes())


@given(position=st.integers(0, 10**6), truncate=st.booleans())
def test_checkpoint_with_damaged_weights(position, truncate):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        _copy_checkpoint(path)
        data = bytearray((path / WEIGHTS_NAME).read_bytes())
        position %= len(data)
        data = data[:position] if truncate else data
        if not truncate:
            data[position] ^= 0x5A
        (path / WEIGHTS_NAME).write_bytes(bytes(data))
        with pytest.raises(CheckpointError):
            from_pretrained(path)


@given(field=st.sampled_from([*_FIELDS, "in_chans", "stage_end"]), value=junk)
def test_checkpoint_with_an_edited_config(field, value):
    record = json.loads((_SAVED / CONFIG_NAME).read_text())
    assume(record["config"].get(field) != value)
    record["config"][field] = value
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        _copy_checkpoint(path)
        (path / CONFIG_NAME).write_text(json.dumps(record))
        with pytest.raises(CheckpointError):
            from_pretrained(path)
