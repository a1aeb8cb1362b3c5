"""Bake stage: every optional section of a prompt's manifest, in manifest order: the one place to add one.

A new section is a class following ``generator.bake.prompt.sections.Section`` in its own module of this
folder, imported and listed here.
"""

from __future__ import annotations

from generator.bake.prompt.daam import DaamSection
from generator.bake.prompt.extra_trajectories import ExtraTrajectoriesSection
from generator.bake.prompt.guidance import GuidanceSection
from generator.bake.prompt.jumps import JumpsSection
from generator.bake.prompt.pipeline import PipelineSection
from generator.bake.prompt.schedule import ScheduleSection
from generator.bake.prompt.sections import Section
from generator.bake.prompt.tokens import TokensSection

SECTIONS: tuple[type, ...] = (JumpsSection, ExtraTrajectoriesSection, TokensSection, PipelineSection, GuidanceSection,
                              ScheduleSection, DaamSection)


def load_sections() -> list[Section]:
    """Instances of every registered section."""
    return [section() for section in SECTIONS]
