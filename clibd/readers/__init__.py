"""Readers for the record formats users bring; `read_records` picks one by file contents."""
from clibd.readers.bioscan import read_bioscan1m, read_bioscan5m
from clibd.readers.bold import read_bold
from clibd.readers.detect import FORMATS, detect_format, read_records
from clibd.readers.fasta import read_fasta
from clibd.readers.table import read_table

__all__ = ["FORMATS", "detect_format", "read_bioscan1m", "read_bioscan5m", "read_bold", "read_fasta",
           "read_records", "read_table"]
