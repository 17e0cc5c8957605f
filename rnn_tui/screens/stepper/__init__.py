"""Screen 1, the stepper (`screen`), and what it draws (`draw`)."""

from .draw import (abbreviate_category, agreement_view, category_colour, category_words, cell_width_for,
                   dense_heat_row, memory_reach, memory_row, token_strip)
from .screen import StepperScreen

__all__ = ["StepperScreen", "abbreviate_category", "agreement_view", "category_colour", "category_words",
           "cell_width_for", "dense_heat_row", "memory_reach", "memory_row", "token_strip"]
