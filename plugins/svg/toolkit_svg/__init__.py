"""toolkit-svg: registers ``svg0``, ``svg1`` and ``svginf``; the implementation
(toolkit_svg.svg0, .svg1, .svginf over toolkit_svg.common) loads on use."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("svg0", "toolkit_svg.svg0:SVG0", "SVG(0) (Heess et al. 2015): model-free stochastic value gradients")
    register("svg1", "toolkit_svg.svg1:SVG1", "SVG(1)-ER (Heess et al. 2015): one step through a learned model, replay")
    register("svginf", "toolkit_svg.svginf:SVGInfinity",
             "SVG(infinity) (Heess et al. 2015): back-propagation through whole episodes via a learned model")
