"""Records streamed to disk while reading: the same records as reading into memory."""

import json

import numpy as np
import pytest

from recommender.core import ArmGroup, Intervention, TrialRecord, decode_record, encode_record
from recommender.ingest import IngestReport, iter_records, read_records, spool_records
from recommender.ingest.spool import UNSORTED_FILE
from tests.factories import write_studies


def test_spooled_records_equal_records_read_into_memory(tmp_path):
    source = write_studies(tmp_path / "studies")
    expected, _ = read_records([source, source])  # each study read twice: last wins
    store, replaced = spool_records(iter_records([source, source], IngestReport()), tmp_path)
    assert list(store) == expected
    assert replaced == len(expected)
    assert store[1:3] == expected[1:3]
    assert not (tmp_path / UNSORTED_FILE).exists()


def test_the_last_copy_of_a_trial_wins_and_lines_come_out_sorted(tmp_path):
    first = TrialRecord("NCT00000003", brief_title="first copy")
    records = [first, TrialRecord("NCT00000001"), TrialRecord("NCT00000003", brief_title="é")]
    store, replaced = spool_records(records, tmp_path)
    assert [r.nct_id for r in store] == ["NCT00000001", "NCT00000003"]
    assert store[1].brief_title == "é" and replaced == 1
    lines = (tmp_path / "records.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["nct_id"] for line in lines] == ["NCT00000001", "NCT00000003"]
    offsets = np.load(tmp_path / "records.offsets.npy")
    assert offsets[-1] == (tmp_path / "records.jsonl").stat().st_size
    # Read-only, so that an index saved from it may link it instead of copying.
    assert not (tmp_path / "records.jsonl").stat().st_mode & 0o222


def test_no_records_make_an_empty_store(tmp_path):
    store, replaced = spool_records([], tmp_path)
    assert len(store) == 0 and list(store) == [] and replaced == 0


def test_a_record_encodes_as_its_dict_and_decodes_to_itself():
    record = TrialRecord(
        "NCT00000001",
        brief_title="Ünïcode title",
        conditions=("Asthma",),
        interventions=(Intervention("Drug A", "DRUG", other_names=("A",)),),
        arm_groups=(ArmGroup("Arm 1", intervention_names=("Drug A",)),),
        phases=("PHASE2",),
    )
    line = encode_record(record)
    assert json.loads(line) == json.loads(json.dumps(record.to_dict()))
    assert decode_record(line) == record


def test_a_damaged_line_is_a_value_error():
    with pytest.raises(ValueError):
        decode_record(b'{"nct_id": "not an id"}\n')
    with pytest.raises(ValueError):
        decode_record(b'{"nct_id": "NCT000')


def test_sorting_copies_lines_with_bounded_reads_not_a_map(tmp_path, monkeypatch):
    # A map of the unsorted file counted its whole size as the build's memory by the
    # end of the copy (1.2 GB at 300k studies); the lines are read in bounded pieces.
    import mmap
    import os

    real_mmap = mmap.mmap

    def no_map_of_the_unsorted_file(fd, *args, **kwargs):
        assert not os.readlink(f"/proc/self/fd/{fd}").endswith(UNSORTED_FILE)
        return real_mmap(fd, *args, **kwargs)

    monkeypatch.setattr(mmap, "mmap", no_map_of_the_unsorted_file)
    monkeypatch.setattr("recommender.ingest.spool._COPY_BYTES", 7)  # many pieces per line
    records = [TrialRecord(f"NCT0000000{i}", brief_title="t" * i) for i in (5, 2, 3, 9, 1)]
    store, replaced = spool_records(records, tmp_path)
    assert list(store) == sorted(records, key=lambda r: r.nct_id) and replaced == 0


def test_a_pass_over_a_few_fields_decodes_only_those(tmp_path):
    import msgspec

    class Titles(msgspec.Struct):
        brief_title: str = ""
        acronym: str = ""

    records = [TrialRecord(f"NCT0000000{i}", brief_title=f"t{i}", acronym="A") for i in range(5)]
    store, _ = spool_records(records, tmp_path)
    assert list(store.iter_fields(Titles)) == [Titles(f"t{i}", "A") for i in range(5)]


@pytest.mark.parametrize("kernel_copy", ["available", "refused", "absent"])
def test_copied_bytes_are_the_same_however_they_are_copied(tmp_path, monkeypatch, kernel_copy):
    import os

    from recommender.ingest import spool

    source = tmp_path / "source"
    source.write_bytes(bytes(range(256)) * 1000)
    if kernel_copy == "refused":

        def refuse(*_args):
            raise OSError(18, "Invalid cross-device link")

        monkeypatch.setattr(os, "copy_file_range", refuse)
    elif kernel_copy == "absent":
        monkeypatch.delattr(os, "copy_file_range")
    monkeypatch.setattr(spool, "_COPY_BYTES", 4096)
    with open(source, "rb") as handle, open(tmp_path / "out", "wb") as out:
        out.write(b"head")
        spool.copy_bytes(handle.fileno(), 1000, 200_000, out)
        out.write(b"tail")
        with pytest.raises(OSError, match="bytes missing"):
            spool.copy_bytes(handle.fileno(), 255_000, 256_001, out)
    written = (tmp_path / "out").read_bytes()
    assert written[:199_008] == b"head" + source.read_bytes()[1000:200_000] + b"tail"
