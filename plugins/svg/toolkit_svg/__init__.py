"""toolkit-svg: registers ``svg0``, ``svg1`` and ``svginf``; the implementation
(toolkit_svg.svg) loads on use."""

from toolkit import hookimpl


@hookimpl
def register_algorithms(register):
    register("svg0", "toolkit_svg.svg:SVG0", "SVG(0) (Heess et al. 2015): model-free stochastic value gradients")
    register("svg1", "toolkit_svg.svg:SVG1", "SVG(1)-ER (Heess et al. 2015): one step through a learned model, replay")
    register("svginf", "toolkit_svg.svg:SVGInfinity",
             "SVG(infinity) (Heess et al. 2015): back-propagation through whole episodes via a learned model")
