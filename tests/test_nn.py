"""Shared network pieces (toolkit.nn): the compiled optimizer step and its eager fallback."""

import pytest
import torch

from toolkit.nn import CompiledOptimizerStep


def _rmsprop_pair():
    torch.manual_seed(0)
    nets = [torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)]
    nets[1].load_state_dict(nets[0].state_dict())
    return nets, [torch.optim.RMSprop(n.parameters(), lr=1e-2, alpha=0.95, eps=0.01, centered=True) for n in nets]


def _backward(net, seed):
    torch.manual_seed(seed)
    net.zero_grad()
    net(torch.randn(8, 5)).square().mean().backward()


def test_a_compiled_optimizer_step_updates_as_the_eager_one():
    nets, optimizers = _rmsprop_pair()
    compiled = CompiledOptimizerStep(optimizers[1])
    for seed in range(4):
        for net in nets:
            _backward(net, seed)
        optimizers[0].step()
        compiled()
    for eager_param, compiled_param in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(compiled_param, eager_param, rtol=1e-5, atol=1e-6)


def test_a_compiled_optimizer_step_that_cannot_compile_falls_back_to_one_eager_step():
    nets, optimizers = _rmsprop_pair()
    step = CompiledOptimizerStep(optimizers[1])

    def no_compiler():
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    step.step = no_compiler  # what torch.compile's first call raises on a machine without a compiler
    for seed in range(2):
        for net in nets:
            _backward(net, seed)
        optimizers[0].step()
        if seed == 0:
            with pytest.warns(RuntimeWarning, match="eager step.*No working C\\+\\+ compiler"):
                step()
        else:
            step()
    for eager_param, fallback_param in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(fallback_param, eager_param, rtol=0, atol=0)  # one step each time, not two
