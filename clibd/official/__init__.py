"""Import of the published CLIBD weights (`clibd import-official`)."""
from clibd.official.importer import ImportReport, import_official
from clibd.official.keys import PublishedKeyError

__all__ = ["ImportReport", "PublishedKeyError", "import_official"]
