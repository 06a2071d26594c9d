"""Uploads are parsed by the same readers as files: one FASTA parser, one delimiter rule, one set of aliases."""
from clibd.readers.fasta import read_fasta
from clibd.service.inputs import parse_fasta, parse_manifest
from clibd.service.settings import Settings

FASTA = ">a1 order=Diptera\r\nACGTAC\r\nGTACGT\r\n\r\n>b2\nTTTT\n  GGGG  \n>empty\n"


def test_an_uploaded_fasta_reads_as_the_same_file_does(tmp_path):
    path = tmp_path / "q.fasta"
    path.write_bytes(FASTA.encode())
    uploaded = parse_fasta(FASTA, Settings().limits)
    from_file = list(read_fasta(path))
    assert [(r.id, r.sequence) for r in uploaded] == [("a1", "ACGTACGTACGT"), ("b2", "TTTTGGGG"), ("empty", "")]
    assert [(r.id, r.dna or "") for r in from_file] == [(r.id, r.sequence) for r in uploaded]


def test_a_semicolon_manifest_with_bold_column_names_reads():
    text = "processid;nucraw;image_file\nP1;ACGTACGT;p1.jpg\nP2;;p2a.jpg;\n"
    rows = parse_manifest(text, Settings().limits)
    assert [(r.id, r.dna, r.images) for r in rows] == [("P1", "ACGTACGT", ["p1.jpg"]), ("P2", None, ["p2a.jpg"])]


def test_job_tables_hold_no_spreadsheet_formula():
    from clibd.service.results import table
    text = "".join(table([{"specimen_id": "@SUM(A1:A9)", "species": "Osmia pumila", "similarity": -0.5}],
                         ["specimen_id", "species", "similarity"], ","))
    assert text.splitlines()[1] == "'@SUM(A1:A9),Osmia pumila,-0.5"


def test_a_manifest_saved_on_windows_is_text_and_a_photo_is_not():
    import pytest
    from clibd.photos import InputError
    from clibd.service.inputs import decode_text
    assert decode_text("id;dna;collector\nP1;ACGT;Müller\n".encode("cp1252"), "manifest").endswith("Müller\n")
    with pytest.raises(InputError, match="not text .binary data") as err:
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\xff\xfe", "manifest")
    assert err.value.status == 415


def test_an_uploaded_fasta_with_a_bare_sequence_first_names_the_line():
    import pytest
    from clibd.photos import InputError
    with pytest.raises(InputError, match=r"not FASTA: line 2 comes before any '>' header") as err:
        parse_fasta("\nACGTACGT\n>a1\nACGT\n", Settings().limits)
    assert err.value.status == 422
