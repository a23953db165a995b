"""Tiny, hand-made registry studies (API v2 JSON) and indexes built from them."""

from __future__ import annotations

import json
from pathlib import Path

from recommender.pipelines import build_index


def study_json(
    nct_id: str,
    title: str,
    *,
    summary: str = "",
    conditions: tuple[str, ...] = (),
    interventions: tuple[tuple[str, str], ...] = (),
    status: str | None = None,
    phases: tuple[str, ...] = (),
    study_type: str | None = None,
    condition_mesh: tuple[str, ...] = (),
) -> dict:
    """One study in the registry's API v2 shape; interventions are (type, name)."""
    protocol: dict = {"identificationModule": {"nctId": nct_id, "briefTitle": title}}
    if summary:
        protocol["descriptionModule"] = {"briefSummary": summary}
    if conditions:
        protocol["conditionsModule"] = {"conditions": list(conditions)}
    if interventions:
        protocol["armsInterventionsModule"] = {
            "interventions": [{"type": t, "name": n} for t, n in interventions]
        }
    if status:
        protocol["statusModule"] = {"overallStatus": status}
    if phases or study_type:
        protocol["designModule"] = {
            k: v for k, v in (("studyType", study_type), ("phases", list(phases))) if v
        }
    study: dict = {"protocolSection": protocol}
    if condition_mesh:
        study["derivedSection"] = {
            "conditionBrowseModule": {"meshes": [{"term": t} for t in condition_mesh]}
        }
    return study


# Three small topical clusters plus a loner, enough for every neighbour to be
# predictable: liver failure / stem cells, asthma / inhalers, breast cancer / drugs.
TINY_STUDIES = [
    study_json(
        "NCT00000001",
        "Mesenchymal stem cells for acute-on-chronic liver failure",
        summary="Stem cell infusion in patients with liver failure.",
        conditions=("Acute-On-Chronic Liver Failure",),
        interventions=(("BIOLOGICAL", "Mesenchymal stem cells"),),
        status="RECRUITING",
        phases=("PHASE1", "PHASE2"),
        study_type="INTERVENTIONAL",
    ),
    study_json(
        "NCT00000002",
        "Umbilical cord stem cells in liver failure",
        summary="Mesenchymal stem cells given to patients with acute-on-chronic liver failure.",
        conditions=("Liver Failure, Acute on Chronic",),
        interventions=(("BIOLOGICAL", "Umbilical cord mesenchymal stem cells"),),
        status="COMPLETED",
        phases=("PHASE2",),
        study_type="INTERVENTIONAL",
    ),
    study_json(
        "NCT00000003",
        "Outcomes of acute liver failure: a registry",
        summary="Observational registry of patients with acute liver failure.",
        conditions=("Acute Liver Failure",),
        status="RECRUITING",
        study_type="OBSERVATIONAL",
    ),
    study_json(
        "NCT00000004",
        "Inhaled corticosteroids for childhood asthma",
        summary="Budesonide inhaler in children with persistent asthma.",
        conditions=("Asthma",),
        interventions=(("DRUG", "Budesonide"),),
        status="COMPLETED",
        phases=("PHASE3",),
        study_type="INTERVENTIONAL",
    ),
    study_json(
        "NCT00000005",
        "Budesonide and formoterol in adult asthma",
        summary="Combination inhaler for adults with asthma.",
        conditions=("Asthma",),
        interventions=(("DRUG", "Budesonide"), ("DRUG", "Formoterol")),
        status="RECRUITING",
        phases=("PHASE3",),
        study_type="INTERVENTIONAL",
    ),
    study_json(
        "NCT00000006",
        "Asthma education for school children",
        summary="A school programme teaching inhaler use to children with asthma.",
        conditions=("Asthma",),
        interventions=(("BEHAVIORAL", "Asthma education"),),
        status="WITHDRAWN",
        phases=("NA",),
        study_type="INTERVENTIONAL",
    ),
    study_json(
        "NCT00000007",
        "Tamoxifen after surgery for breast cancer",
        summary="Adjuvant tamoxifen in women with early breast cancer.",
        conditions=("Breast Cancer",),
        interventions=(("DRUG", "Tamoxifen"),),
        status="COMPLETED",
        phases=("PHASE3",),
        study_type="INTERVENTIONAL",
    ),
    study_json(
        "NCT00000008",
        "Letrozole versus tamoxifen in breast cancer",
        summary="Aromatase inhibitor letrozole compared with tamoxifen in breast cancer.",
        conditions=("Breast Cancer",),
        interventions=(("DRUG", "Letrozole"), ("DRUG", "Tamoxifen")),
        status="ACTIVE_NOT_RECRUITING",
        phases=("PHASE3",),
        study_type="INTERVENTIONAL",
    ),
    study_json(
        "NCT00000009",
        "Sleep quality of night-shift nurses",
        summary="A survey of sleep among hospital night-shift workers.",
        conditions=("Sleep Disorder",),
        status="UNKNOWN",
        study_type="OBSERVATIONAL",
    ),
]


def write_studies(folder: Path, studies: list[dict] = TINY_STUDIES) -> Path:
    """Write ``studies`` as one ``NCT*.json`` file each into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for study in studies:
        nct_id = study["protocolSection"]["identificationModule"]["nctId"]
        (folder / f"{nct_id}.json").write_text(json.dumps(study), encoding="utf-8")
    return folder


def build_tiny_index(
    tmp_path: Path, *, k: int = 5, out: Path | None = None, studies: list[dict] = TINY_STUDIES
) -> Path:
    """Build an index of ``studies`` (:data:`TINY_STUDIES`) under ``tmp_path`` and
    return its folder.

    Uses ``min_df=1`` groups: in a corpus this small most terms occur once. ``out``
    (default ``tmp_path / "index"``) is the served path to build into.
    """
    from dataclasses import replace

    from recommender.text import DEFAULT_FIELD_GROUPS

    groups = [replace(g, min_df=1, max_df=1.0) for g in DEFAULT_FIELD_GROUPS]
    source = write_studies(tmp_path / "studies", studies)
    out = tmp_path / "index" if out is None else out
    return build_index([source], out, groups=groups, k=k, n_jobs=1).path
