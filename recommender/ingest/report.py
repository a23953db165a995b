"""What a read did: per-source counts, every skipped, ignored and cut item, duplicates."""

from __future__ import annotations

from dataclasses import dataclass, field

from recommender.ingest.limits import DEFAULT_LIMITS, ReadLimits


@dataclass(frozen=True)
class SkippedItem:
    """One item of a source that gave no record, and why.

    ``item`` is the zip member or file name relative to the source (with
    ``[3]`` / ``:studies[3]`` for an entry of a list or page), or ``"line 17"``.
    """

    source: str
    item: str
    reason: str


@dataclass
class SourceSummary:
    """What one source gave: records ``read`` (before de-duplication), ``skipped`` items
    and ``ignored`` files that are not studies."""

    path: str
    format: str
    read: int = 0
    skipped: int = 0
    ignored: int = 0


@dataclass
class IngestReport:
    """What a read did: per-source counts, every skipped item, and de-duplication.

    ``skipped`` lists items that should have been studies and were not readable
    (or were over ``limits.max_file_bytes``); ``ignored`` lists files of a folder
    or zip that are plainly not studies (label files, notes), which lose nothing;
    ``truncated`` lists studies kept with a text cut to ``limits.max_text_chars``.
    ``replaced`` counts records overwritten by a later one with the same NCT id;
    ``studies`` is the number of unique records kept (set by :func:`read_records`).
    """

    sources: list[SourceSummary] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    ignored: list[SkippedItem] = field(default_factory=list)
    truncated: list[SkippedItem] = field(default_factory=list)
    limits: ReadLimits = DEFAULT_LIMITS
    replaced: int = 0
    studies: int = 0

    def summary(self, max_skipped: int = 5) -> str:
        """A short human-readable account: one line per source, totals, first skips."""
        lines = [
            f"{s.read:,} read, {s.skipped:,} skipped"
            + (f", {s.ignored:,} ignored" if s.ignored else "")
            + f": {s.path} ({s.format})"
            for s in self.sources
        ]
        lines.append(
            f"{self.studies:,} studies kept; {self.replaced:,} replaced by a later record "
            f"with the same id; {len(self.skipped):,} skipped; "
            f"{len(self.ignored):,} ignored (not studies); "
            f"{len(self.truncated):,} with a text cut to {self.limits.max_text_chars:,} characters"
        )
        for ignored in self.ignored[:max_skipped]:
            lines.append(f"  ignored {ignored.item} in {ignored.source}: {ignored.reason}")
        for cut in self.truncated[:max_skipped]:
            lines.append(f"  cut {cut.item} in {cut.source}: {cut.reason}")
        for skip in self.skipped[:max_skipped]:
            lines.append(f"  skipped {skip.item} in {skip.source}: {skip.reason}")
        if len(self.skipped) > max_skipped:
            lines.append(f"  ... and {len(self.skipped) - max_skipped:,} more skipped items")
        return "\n".join(lines)
