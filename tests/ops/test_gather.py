"""gather_rows: table[index] with a fixed-order (sparse one-hot) backward."""

import pytest
import torch

from treeattn.layers.pos_bias import ContinuousPositionBias, TablePositionBias
from treeattn.ops import gather as gather_module
from treeattn.ops.gather import gather_rows, scatter_plan
from treeattn.ops.position import relative_position_index


def _index(group=(16, 16)):
    index = relative_position_index(group).flatten()
    return index, (2 * group[0] - 1) * (2 * group[1] - 1)


def test_plan_lists_each_rows_positions_in_order():
    index = torch.tensor([2, 0, 2, 1, 0, 2])
    crow, col = scatter_plan(index, 4)  # row 3 is never gathered
    assert crow.tolist() == [0, 2, 3, 6, 6]
    assert col.tolist() == [1, 4, 3, 0, 2, 5]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("contiguous", [True, False])
def test_gradient_is_the_one_thread_index_put_to_the_bit(threads, contiguous):
    index, rows = _index()
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(rows, 6, generator=gen, requires_grad=True)
    grad = torch.randn(6, index.numel(), generator=gen)  # the bias's (h, q·k) layout...
    grad = grad.t().contiguous() if contiguous else grad.t()  # ...or as it arrives, strided
    expected = torch.zeros(rows, 6).index_put_((index,), grad.contiguous(), accumulate=True)
    torch.set_num_threads(threads)  # the conftest fixture restores the count
    out = gather_rows(table, index, scatter_plan(index, rows))
    assert torch.equal(out, table[index])
    for _ in range(3):  # the same bits every time
        (got,) = torch.autograd.grad(out, table, grad, retain_graph=True)
        assert torch.equal(got, expected)


def test_gradcheck_in_float64():
    index, rows = _index((3, 4))
    table = torch.randn(rows, 2, dtype=torch.float64, requires_grad=True)
    plan = scatter_plan(index, rows)
    assert torch.autograd.gradcheck(lambda t: gather_rows(t, index, plan), (table,))


def test_plain_indexing_where_the_plan_does_not_run(monkeypatch):
    calls = []
    monkeypatch.setattr(gather_module._GatherRows, "apply", lambda *a: calls.append(1))
    index, rows = _index((2, 3))
    plan = scatter_plan(index, rows)
    table = torch.randn(rows, 3, requires_grad=True)
    with torch.no_grad():
        assert torch.equal(gather_rows(table, index, plan), table[index])
    fixed = table.detach()
    assert torch.equal(gather_rows(fixed, index, plan), fixed[index])
    low = table.detach().bfloat16().requires_grad_()
    assert torch.equal(gather_rows(low, index, plan), low[index])
    assert calls == []
    gather_rows(table, index, plan)
    assert calls == [1]


@pytest.mark.parametrize("module", [ContinuousPositionBias, TablePositionBias])
def test_position_biases_train_as_with_plain_indexing(monkeypatch, module):
    torch.manual_seed(0)
    bias = module((8, 8), 3)
    grad = torch.randn(1, 3, 64, 64)
    out = bias()
    grads = torch.autograd.grad(out, list(bias.parameters()), grad)
    monkeypatch.setattr(
        "treeattn.layers.pos_bias.gather_rows", lambda table, index, plan: table[index]
    )
    assert torch.equal(bias(), out)
    ref = torch.autograd.grad(bias(), list(bias.parameters()), grad)
    for g, r in zip(grads, ref, strict=True):
        torch.testing.assert_close(g, r, atol=0, rtol=0)


def test_plan_that_does_not_fit_is_refused():
    index, rows = _index((2, 2))
    table = torch.randn(rows, 3, requires_grad=True)
    with pytest.raises(ValueError, match="scatter_plan"):
        gather_rows(table, index, scatter_plan(index, rows + 1))
    with pytest.raises(ValueError, match="2-D table"):
        gather_rows(table[None], index, scatter_plan(index, rows))


def test_second_derivatives_and_autocast():
    index, rows = _index((3, 3))
    table = torch.randn(rows, 2, dtype=torch.float64, requires_grad=True)
    plan = scatter_plan(index, rows)
    assert torch.autograd.gradgradcheck(lambda t: gather_rows(t, index, plan).sin(), (table,))
    table32 = table.detach().float().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the backward stays float32
        (grad,) = torch.autograd.grad(gather_rows(table32, index, plan).sum(), table32)
    assert grad.dtype == torch.float32


@pytest.mark.parametrize("module", [ContinuousPositionBias, TablePositionBias])
def test_position_biases_build_on_the_meta_device(module):
    with torch.device("meta"):  # (shapes only: the analysis tools count models this way)
        bias = module((16, 16), 6)
    assert bias.index.is_meta and bias.scatter_col.is_meta
    assert bias.scatter_col.shape == (256 * 256,) and bias.scatter_crow.shape == (961 + 1,)
