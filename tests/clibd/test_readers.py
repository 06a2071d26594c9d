import gzip

import pytest

from clibd.readers import detect_format, read_fasta, read_records
from clibd.records import Record, write_records


def test_fasta_headers_wrapping_case_and_crlf(tmp_path):
    path = tmp_path / "x.fasta"
    path.write_bytes(
        b">A1;tax=o:Diptera,f:Culicidae,g:Aedes,s:Aedes_vexans;\r\nacgt\r\nACGU\r\n"
        b">B2|Lepidoptera|Nymphalidae|Danaus|Danaus plexippus|BOLD:AAA1234\nAC-GT\nRY\n"
        b">C3 order=Coleoptera;family=Carabidae;species=Abax ater\nACGT\n"
        b">D4 some free text\nACGT\n>E5\n"
    )
    recs = {r.id: r for r in read_fasta(path)}
    assert recs["A1"].species == "Aedes vexans" and recs["A1"].dna == "acgtACGU"
    assert recs["B2"].genus == "Danaus" and recs["B2"].bin == "BOLD:AAA1234" and recs["B2"].dna == "AC-GTRY"
    assert recs["C3"].family == "Carabidae" and recs["C3"].genus is None and recs["C3"].species == "Abax ater"
    assert recs["D4"].order is None and recs["D4"].dna == "ACGT"
    assert recs["E5"].dna is None
    assert detect_format(path) == "fasta"


def test_bioscan1m_not_classified_and_image_layout(tmp_path):
    path = tmp_path / "BIOSCAN_Insect_Dataset_metadata.tsv"
    path.write_text("sampleid\tprocessid\turi\tname\tphylum\tclass\torder\tfamily\tsubfamily\ttribe\tgenus\t"
                    "species\tsubspecies\tnucraw\timage_file\tchunk_number\n"
                    "S1\tP1\tBOLD:AAB0001\tx\tArthropoda\tInsecta\tDiptera\tCecidomyiidae\tnot_classified\t"
                    "not_classified\tnot_classified\tnot_classified\tnot_classified\tACGTRYN\tP1.jpg\t3\n")
    [rec] = read_records(path, image_root=tmp_path / "images")
    assert detect_format(path) == "bioscan1m"
    assert (rec.order, rec.family, rec.genus, rec.species) == ("Diptera", "Cecidomyiidae", None, None)
    assert rec.dna == "ACGTRYN" and rec.bin == "BOLD:AAB0001"
    assert rec.image.endswith("images/cropped_256/part3/P1.jpg")


def test_bioscan5m_split_column_is_kept(tmp_path):
    path = tmp_path / "BIOSCAN_5M_Insect_Dataset_metadata.csv"
    path.write_text("processid,sampleid,taxon,phylum,class,order,family,subfamily,genus,species,dna_bin,"
                    "dna_barcode,country,split,chunk\n"
                    "P9,S9,x,Arthropoda,Insecta,Hymenoptera,Braconidae,,,,BOLD:ABC1234,ACGTN,Canada,key_unseen,7\n")
    [rec] = read_records(path, image_root=tmp_path)
    assert detect_format(path) == "bioscan5m"
    assert rec.split == "key_unseen" and rec.genus is None and rec.bin == "BOLD:ABC1234"
    assert rec.image.endswith("cropped_256/key_unseen/7/P9.jpg")


def test_bold_v4_and_v5_and_marker_merging(tmp_path):
    v4 = tmp_path / "v4.tsv.gz"
    with gzip.open(v4, "wt") as fh:
        fh.write("processid\tbin_uri\torder_name\tfamily_name\tsubfamily_name\tgenus_name\tspecies_name\tnucleotides\n"
                 "A-1\tBOLD:AAA0001\tHymenoptera\tMegachilidae\t\tOsmia\tOsmia sp1-1395\tACGT--\n")
    v5 = tmp_path / "v5.tsv"
    v5.write_text("processid\tbin_uri\torder\tfamily\tgenus\tspecies\tnuc\tmarker_code\n"
                  "B-1\tNone\tDiptera\tChironomidae\tTanytarsus\tNone\tTTTT\t28S\n"
                  "B-1\tNone\tDiptera\tChironomidae\tTanytarsus\tNone\tACGT\tCOI-5P\n"
                  "B-2\tBOLD:AAC0002\tDiptera\tChironomidae\tNone\tNone\tGGGG\tCAD\n")
    [a] = read_records(v4)
    assert detect_format(v4) == "bold" and a.species == "Osmia sp1-1395" and a.dna == "ACGT--"
    recs = read_records(v5)
    assert detect_format(v5) == "bold"
    assert [(r.id, r.dna, r.species, r.bin) for r in recs] == [("B-1", "ACGT", None, None), ("B-2", None, None, "BOLD:AAC0002")]


def test_plain_table_aliases_relative_images_and_roundtrip(tmp_path):
    (tmp_path / "img").mkdir()
    path = tmp_path / "sheet.csv"
    path.write_text("Sample_ID,Order,Family,Genus,Species,Sequence,Image_File\nX1,Diptera,,Aedes,,acgt,img/x1.jpg\n")
    [rec] = read_records(path)
    assert rec.id == "X1" and rec.family is None and rec.dna == "acgt"
    assert rec.image == str(tmp_path / "img" / "x1.jpg")
    out = tmp_path / "sub" / "records.tsv"
    write_records([rec, Record(id="Y")], out)
    back = read_records(out)
    assert back[0] == rec and back[1].id == "Y"
    bad = tmp_path / "bad.csv"
    bad.write_text("name,colour\na,b\n")
    with pytest.raises(ValueError, match="identifier column"):
        read_records(bad)


@pytest.mark.realdata
def test_real_files_parse_without_loss(shared_data):
    insect = read_records(shared_data / "insect1k" / "insect1k_coi5p.tsv.gz")
    assert len(insect) == 108656 and len({r.species for r in insect}) == 1023
    assert len({r.dna.upper() for r in insect}) > 50000
    osmia = read_records(shared_data / "bold_sets" / "osmia_coi5p.tsv.gz")
    assert len(osmia) == 1299 and len({r.species for r in osmia if r.species}) == 140
    v5 = read_records(shared_data / "bold_sets" / "chironominae_norway_bold5.tsv.gz")
    assert len(v5) == 1648 and sum(r.dna is not None for r in v5) == 1648  # one specimen per processid, COI-5P
    assert len({r.species for r in v5 if r.species}) == 206 and len({r.genus for r in v5 if r.genus}) == 34
    assert any(set(r.dna) - set("ACGT-") for r in v5)  # IUPAC letters and gaps survive parsing
    b1m = read_records(shared_data / "bioscan" / "bioscan1m_small_validation_metadata.tsv.gz")
    assert len(b1m) == 8273 and all(r.species != "not_classified" for r in b1m)
    assert len({r.order for r in b1m if r.order}) == 17 and len({r.species for r in b1m if r.species}) == 679
    leeds = read_records(shared_data / "leeds_butterflies" / "images.tsv")
    assert len(leeds) == 508 and all(__import__("os").path.exists(r.image) for r in leeds)


def test_bold_v5_export_as_semicolon_csv_reads_and_a_bad_file_names_its_delimiter(tmp_path):
    from clibd.readers.detect import detect_format
    header = "processid;sampleid;bin_uri;order;family;genus;species;marker_code;nuc"
    rows = ["P1;S1;BOLD:AAA0001;Diptera;Chironomidae;Tanytarsus;Tanytarsus sp. 1;COI-5P;ACGT-ACGTAC",
            "P1;S1;BOLD:AAA0001;Diptera;Chironomidae;Tanytarsus;Tanytarsus sp. 1;ITS2;GGGGGG",
            'P2;S2;;Diptera;Chironomidae;Micropsectra;"Micropsectra; cf. 2";COI-5P;TTTTAAAACC']
    path = tmp_path / "bold_export.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    assert detect_format(path) == "bold"
    recs = {r.id: r for r in read_records(path)}
    assert recs["P1"].dna == "ACGT-ACGTAC" and recs["P1"].bin == "BOLD:AAA0001"
    assert recs["P2"].species == "Micropsectra; cf. 2" and recs["P2"].bin is None
    assert {r.id for r in read_records(path, "bold")} == {"P1", "P2"}
    bad = tmp_path / "other.csv"
    bad.write_text("sample;value\nx;1\n")
    with pytest.raises(ValueError, match="semicolon-separated, its columns are: sample, value"):
        read_records(bad)
    with pytest.raises(ValueError, match="not a BOLD export"):
        read_records(bad, "bold")


def test_a_table_saved_by_a_windows_spreadsheet_reads_as_written(tmp_path):
    path = tmp_path / "manifest.csv"
    path.write_bytes("id,dna,species,collector\nW1,ACGTACGT,Osmia bicornis,Müller\n".encode("cp1252"))
    gz = tmp_path / "manifest2.csv.gz"
    with gzip.open(gz, "wb") as fh:  # UTF-8 and one cp1252 byte in the same file: each read as itself
        fh.write("id,dna,species\nW2,ACGT,Bombus lapponicus\u00e9\n".encode() + b"W3,ACGT,Caf\xe9 sp.\n")
    assert read_records(path)[0].species == "Osmia bicornis"
    from clibd.readers.tabular import iter_rows
    assert next(iter_rows(path))["collector"] == "Müller"  # was "M\ufffdller"
    assert [r.species for r in read_records(gz)] == ["Bombus lapponicus\u00e9", "Café sp."]


def test_a_bold_export_mixing_v4_and_v5_column_names_keeps_its_barcodes(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("processid;bin_uri;order_name;family_name;genus_name;species_name;nuc;marker_code\n"
                    "P1;BOLD:AAA0001;Diptera;Chironomidae;Chironomus;Chironomus riparius;ACGTACGT;COI-5P\n"
                    "P1;BOLD:AAA0001;Diptera;Chironomidae;Chironomus;Chironomus riparius;TTTTTTTT;ITS\n")
    [rec] = read_records(path)
    assert (rec.id, rec.genus, rec.dna) == ("P1", "Chironomus", "ACGTACGT")  # was no barcode at all


def test_text_before_the_first_fasta_header_is_refused_not_skipped(tmp_path):
    bare = tmp_path / "bare.fasta"
    bare.write_text("ACGTACGTACGT\n>S1\nACGT\n")
    with pytest.raises(ValueError, match=r"bare.fasta: not FASTA: line 1 comes before any '>' header"):
        list(read_fasta(bare))
    commented = tmp_path / "commented.fasta"
    commented.write_text("; exported 2026-01-01\n\n# plate 7\n>S1\nACGT\n")
    assert [(r.id, r.dna) for r in read_fasta(commented)] == [("S1", "ACGT")]
