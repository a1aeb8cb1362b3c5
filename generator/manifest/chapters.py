"""Manifest: the chapter kinds a prompt file can add beside its prompts, named once for bake and render.

A chapter's id is the prompt file's section that declares it (``experiments:``, ``training:``,
``faithfulness:``, ``daam_findings:``), the folder its manifests go to under the generated folder (``<id>/<set id>.json``) and
its definition in ``chapters.schema.json``. ``PAGES`` is the page each one renders to.
"""

from __future__ import annotations

CHAPTERS = ("experiments", "training", "faithfulness", "daam_findings")
PAGES = {"experiments": "course", "training": "training", "faithfulness": "faithfulness",
         "daam_findings": "daam-findings"}
