"""gather_columns: table[index] transposed, contiguous, with a fixed-order backward."""

import pytest
import torch

from treeattn.layers.pos_bias import ContinuousPositionBias, TablePositionBias
from treeattn.ops.gather import gather_columns
from treeattn.ops.position import relative_position_index


def _index(group=(16, 16)):
    index = relative_position_index(group).flatten()
    return index, (2 * group[0] - 1) * (2 * group[1] - 1)


def test_values_are_the_transposed_rows_laid_out_contiguously():
    index, rows = _index((3, 5))
    table = torch.randn(rows, 4)
    out = gather_columns(table, index)
    assert out.shape == (4, index.numel()) and out.is_contiguous()
    assert torch.equal(out, table[index].t())
    assert torch.equal(gather_columns(table.t().contiguous().t(), index), out)  # any layout


@pytest.mark.parametrize("threads", [1, 2])
def test_gradient_is_the_one_thread_index_put_to_the_bit(threads):
    index, rows = _index()
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(rows, 6, generator=gen, requires_grad=True)
    grad = torch.randn(6, index.numel(), generator=gen)  # the bias's (h, q·k) layout
    torch.set_num_threads(1)  # the conftest fixture restores the count
    expected = torch.zeros(rows, 6).index_put_((index,), grad.t().contiguous(), accumulate=True)
    torch.set_num_threads(threads)
    out = gather_columns(table, index)
    for _ in range(3):  # the same bits every time
        (got,) = torch.autograd.grad(out, table, grad, retain_graph=True)
        assert torch.equal(got, expected)


def test_first_and_second_derivatives_in_float64():
    index, rows = _index((3, 4))
    table = torch.randn(rows, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: gather_columns(t, index), (table,))
    assert torch.autograd.gradgradcheck(lambda t: gather_columns(t, index).sin(), (table,))


def test_autocast_keeps_the_table_dtype():
    index, rows = _index((3, 3))
    table = torch.randn(rows, 2, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = gather_columns(table, index)
        (grad,) = torch.autograd.grad(out.sum(), table)
    assert out.dtype == grad.dtype == torch.float32


@pytest.mark.parametrize("module", [ContinuousPositionBias, TablePositionBias])
def test_position_biases_train_as_with_plain_indexing(monkeypatch, module):
    torch.manual_seed(0)
    bias = module((8, 8), 3)
    grad = torch.randn(1, 3, 64, 64)
    out = bias()
    assert out.shape == (1, 3, 64, 64) and out.is_contiguous()
    grads = torch.autograd.grad(out, list(bias.parameters()), grad)
    monkeypatch.setattr(
        "treeattn.layers.pos_bias.gather_columns", lambda table, index: table[index].t()
    )
    assert torch.equal(bias(), out)
    ref = torch.autograd.grad(bias(), list(bias.parameters()), grad)
    for g, r in zip(grads, ref, strict=True):
        torch.testing.assert_close(g, r, atol=0, rtol=0)


def test_shapes_that_do_not_fit_are_refused():
    index, rows = _index((2, 2))
    table = torch.randn(rows, 3)
    with pytest.raises(ValueError, match="2-D"):
        gather_columns(table[None], index)
    with pytest.raises(ValueError, match="1-D index"):
        gather_columns(table, index[None])


@pytest.mark.parametrize("module", [ContinuousPositionBias, TablePositionBias])
def test_position_biases_build_on_the_meta_device(module):
    with torch.device("meta"):  # (shapes only: the analysis tools count models this way)
        bias = module((16, 16), 6)
    assert bias.index.is_meta and bias.index.shape == (256 * 256,)
    assert bias().shape == (1, 6, 256, 256)
