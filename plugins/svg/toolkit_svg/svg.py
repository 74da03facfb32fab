"""The SVG algorithms' former single module; each now has its own (``svg0``, ``svg1``,
``svginf``) over shared parts (``common``). Names stay importable from here."""

from toolkit_svg.common import (  # noqa: F401
    DeterministicPolicy,
    DynamicsModel,
    GaussianPolicy,
    SVGBase,
    SVGConfig,
    gaussian_log_prob,
    infer_noise,
    svg_infinity_gradient,
    truncated_importance_weight,
)
from toolkit_svg.svg0 import SVG0, SVG0Config  # noqa: F401
from toolkit_svg.svg1 import SVG1, SVG1Config  # noqa: F401
from toolkit_svg.svginf import SVGInfinity  # noqa: F401

SVG = SVGBase  # the former base class's name
