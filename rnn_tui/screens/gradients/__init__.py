"""Screen 3, Gradients (`screen`), and what it draws (`draw`)."""

from .draw import GradientsComputed, ProfileEntry, draw_profiles, profile_words, ratio_words, underflow_floor
from .screen import GradientsScreen

__all__ = ["GradientsScreen", "GradientsComputed", "ProfileEntry", "draw_profiles", "profile_words", "ratio_words",
           "underflow_floor"]
