"""Property tests of padding to a tree's multiple and cropping back."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from treeattn.ops.padding import crop_to, pad_to_multiple

sizes = st.integers(1, 40)
multiples = st.integers(1, 16)


@given(
    h=sizes,
    w=sizes,
    mh=multiples,
    mw=multiples,
    oh=st.integers(0, 8),
    ow=st.integers(0, 8),
    channels_last=st.booleans(),
)
def test_pad_reaches_the_multiple_and_crop_restores(h, w, mh, mw, oh, ow, channels_last):
    fmt = "BHWC" if channels_last else "BCHW"
    x = torch.randn(2, h, w, 3) if channels_last else torch.randn(2, 3, h, w)
    padded, size = pad_to_multiple(x, (mh, mw), offset=(oh, ow), data_format=fmt)
    ph, pw = padded.shape[1:3] if channels_last else padded.shape[2:]
    assert size == (h, w)
    assert ph % mh == 0 and pw % mw == 0 and ph >= h + oh and pw >= w + ow
    assert ph - (h + oh) < mh and pw - (w + ow) < mw
    assert torch.equal(crop_to(padded, size, offset=(oh, ow), data_format=fmt), x)


def test_reflect_when_possible():
    x = torch.arange(6.0).view(1, 1, 1, 6)
    padded, _ = pad_to_multiple(x, (1, 8))
    assert padded[0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5, 4, 3]


def test_replicate_when_the_image_is_smaller_than_the_pad():
    x = torch.tensor([[[[1.0, 2.0]]]])
    padded, _ = pad_to_multiple(x, 8)
    assert padded.shape == (1, 1, 8, 8)
    assert padded[0, 0, 0].tolist() == [1, 2, 2, 2, 2, 2, 2, 2]
    assert torch.equal(padded[0, 0, :, 0], torch.ones(8))


def test_already_aligned_input_is_returned_unchanged():
    x = torch.randn(1, 3, 16, 32)
    padded, size = pad_to_multiple(x, 16)
    assert padded is x and size == (16, 32)
