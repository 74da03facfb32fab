"""Shared network pieces (toolkit.nn): the compiled optimizer step and its eager fallback, the
image layout of an observation space and the Nature CNN on any image size and layout."""

import warnings

import numpy as np
import pytest
import torch
from gymnasium import spaces

from toolkit.nn import CompiledOptimizerStep, NatureCNN, image_channels_and_size, image_layout, nature_cnn_fits


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


def test_image_layout_reads_the_channel_axis_as_the_smallest_first_or_last():
    def image(*shape, low=0, high=255, dtype=np.uint8):
        return spaces.Box(low, high, shape, dtype)

    assert image_layout(image(4, 84, 84)) == "CHW"  # an Atari frame stack
    assert image_layout(image(96, 96, 3)) == "HWC"  # CarRacing
    assert image_layout(image(64, 64, 1)) == "HWC" and image_layout(image(1, 64, 64)) == "CHW"
    assert image_layout(image(84, 84, 84)) == "CHW"  # no smaller axis: channels first, as SB3 reads it
    assert image_layout(image(40, 3, 40)) is None  # channels in the middle
    assert image_layout(image(4, 84, 84, dtype=np.float32, high=1.0)) is None  # not uint8 pixels
    assert image_layout(image(6, 10, 10, high=1)) is None  # MinAtar's 0/1 grids are not 0..255 images
    assert image_layout(spaces.Box(-1, 1, (3,), np.float32)) is None
    assert image_channels_and_size(image(96, 96, 3)) == (3, (96, 96))
    assert image_channels_and_size(image(4, 84, 84)) == (4, (84, 84))


def test_the_nature_cnn_reads_channels_last_images_as_their_channels_first_transpose():
    torch.manual_seed(0)
    last = NatureCNN.for_images(spaces.Box(0, 255, (96, 72, 3), np.uint8))
    first = NatureCNN(3, image_size=(96, 72))
    first.load_state_dict(last.state_dict())  # same parameters: only the input layout differs
    frames = torch.randint(0, 256, (5, 96, 72, 3), dtype=torch.uint8)
    features = last(frames)
    assert features.shape == (5, 512)
    torch.testing.assert_close(features, first(frames.permute(0, 3, 1, 2)))
    assert last.fc[0].in_features == 64 * 8 * 5  # 96 -> 23 -> 10 -> 8 rows, 72 -> 17 -> 7 -> 5 columns


def test_the_nature_cnn_keeps_its_atari_shape_and_refuses_images_below_36_pixels():
    atari = NatureCNN.for_images(spaces.Box(0, 255, (4, 84, 84), np.uint8))
    assert atari.fc[0].in_features == 64 * 7 * 7 and not atari.channels_last_input
    assert NatureCNN(4).state_dict().keys() == atari.state_dict().keys()  # checkpoints of Atari runs still load
    assert NatureCNN(1, image_size=(36, 36))(torch.zeros(2, 1, 36, 36, dtype=torch.uint8)).shape == (2, 512)
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN(3, image_size=(35, 64))
    # what the algorithms' checks ask before building one: the same boundary, in either layout
    assert nature_cnn_fits(spaces.Box(0, 255, (36, 40, 3), np.uint8))
    assert nature_cnn_fits(spaces.Box(0, 255, (1, 36, 36), np.uint8))
    assert not nature_cnn_fits(spaces.Box(0, 255, (35, 64, 3), np.uint8))
    assert not nature_cnn_fits(spaces.Box(0, 255, (4, 10, 10), np.uint8))  # MinAtar
    assert not nature_cnn_fits(spaces.Box(-1, 1, (84,), np.float32))


@pytest.mark.parametrize("algo, env_kwargs", [("sac", ()), ("td3", ()), ("ppo", ()), ("trpo", ()),
                                              ("dqn", ("continuous=false",))])
def test_network_auto_says_at_start_when_it_reads_images_as_vectors(algo, env_kwargs):
    """CarRacing's frames: SAC, TD3, PPO and TRPO with --network auto flatten them into an MLP's
    input, say so and point to --network nature, which then says nothing; DQN, whose auto
    network is the CNN there, says nothing."""
    from toolkit.run import plan

    if algo == "dqn":
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            plan(algo, {"env": "CarRacing-v3", "env_kwargs": env_kwargs})
        return
    with pytest.warns(UserWarning, match="CarRacing-v3 gives images \\(96, 96, 3\\); --network auto reads them with "
                                         "MLPs over raw pixels .*--network nature reads"):
        plan(algo, {"env": "CarRacing-v3", "env_kwargs": env_kwargs})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        plan(algo, {"env": "CarRacing-v3", "env_kwargs": env_kwargs, "network": "nature"})
