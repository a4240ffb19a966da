"""``LaunchCounter``: kernels counted per operator, views and metadata left out, compiled regions
counted by inductor's own count of the kernels it generated (issue 26)."""
import torch

from vissl_pirl_plugin.utils.launch_counter import LaunchCounter


def test_a_known_sequence_of_operators_gives_its_count_per_operator():
    x = torch.ones(4)
    with LaunchCounter() as launches:
        y = x + 1
        y.mul_(2)
        y.sum()
        x.to(torch.float64)
        torch.rand(3)
    assert launches.total == 5
    assert launches.by_op == {"aten.add": 1, "aten.mul_": 1, "aten.sum": 1, "aten._to_copy": 1,
                              "aten.rand": 1}


def test_views_allocations_and_copy_free_reshapes_are_not_counted():
    x = torch.ones(2, 3)
    with LaunchCounter() as launches:
        x.view(3, 2).t().unsqueeze(0).expand(4, 2, 3).permute(2, 0, 1)
        x[1:, ::2], x[0], x.reshape(6), x.contiguous(), x.detach(), x.unbind(0), x.split(1)
        x.view(torch.int32), x.movedim(0, 1), x.flatten(), x.expand_as(torch.empty(5, 2, 3))
        torch.empty(10)
        x.clone().transpose_(0, 1)  # the clone only
    assert launches.by_op == {"aten.clone": 1}


def test_a_reshape_that_copies_counts_once():
    x = torch.ones(2, 3)
    with LaunchCounter() as launches:
        x.t().reshape(6)
    assert launches.total == 1


def test_nested_counters_each_count_their_own_block():
    x = torch.ones(3)
    with LaunchCounter() as outer:
        x.neg()
        with LaunchCounter() as inner:
            x.exp()
    assert (outer.total, inner.total) == (2, 1)


def test_compiled_regions_count_inductors_kernels_and_their_dispatched_fallbacks():
    from torch._inductor import metrics

    def pointwise_then_matmul(x, w):
        scaled = (x * 3 + 1).floor()
        return (scaled @ w).clamp(0, 255) + scaled.sum()

    compiled = torch.compile(pointwise_then_matmul)
    x, w = torch.rand(4, 8), torch.rand(8, 5)
    with LaunchCounter() as eager:
        pointwise_then_matmul(x, w)
    metrics.reset()
    compiled(x, w)  # compiles (or loads from inductor's cache) outside the counter
    generated = metrics.generated_kernel_count
    with LaunchCounter() as launches:
        result = compiled(x, w)
    assert torch.allclose(result, pointwise_then_matmul(x, w))
    assert eager.total == 7 and generated >= 1
    assert launches.by_op == {"inductor": generated, "aten.mm": 1}  # the matmul: dispatched
    assert launches.compiled == generated and launches.total < eager.total
