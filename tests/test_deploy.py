"""Reading service source: which services it defines, and refusals that name file, line and reason."""

from __future__ import annotations

import pytest

from nbsched.client.api import source_units
from nbsched.errors import DeployError
from nbsched.worker.loading import SourceUnit, default_service_name, parse_services, source_version


def parse(source: str, origin: str = "<cell>"):
    return parse_services(SourceUnit(source, origin))


def test_every_service_subclass_with_handle_is_found_by_its_name():
    parsed = parse(
        "from nbsched import Service\n"
        "class Base(Service):\n    pass\n"
        "class Sync(Base):\n    name = 'api.scheduler.sync'\n    def handle(self): pass\n"
        "class DailyReport(Service):\n    def handle(self): pass\n",
        origin="services/report.py",
    )
    assert parsed.services == {"api.scheduler.sync": "Sync", "report.daily-report": "DailyReport"}


def test_default_names_are_kebab_case_with_the_file_stem():
    assert default_service_name("SyncData", "services/data.py") == "data.sync-data"
    assert default_service_name("SyncData", "<cell>") == "sync-data"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("class A(Service)\n    pass\n", "Cannot deploy svc.py, line 1: expected ':'"),
        ("x = 1\n", "Cannot deploy svc.py: it defines no Service subclass with a handle() method"),
        (
            "class A(Service):\n    name = 42\n    def handle(self): pass\n",
            "svc.py, line 2: A.name must be a plain string",
        ),
        (
            "class A(Service):\n    name = 'x'\n    def handle(self): pass\n"
            "class B(Service):\n    name = 'x'\n    def handle(self): pass\n",
            "two classes (A, B) use the service name 'x'",
        ),
    ],
)
def test_bad_source_is_refused_with_file_line_and_reason(source, message):
    with pytest.raises(DeployError) as caught:
        parse(source, origin="svc.py")
    assert message in str(caught.value)


def test_a_name_from_another_cell_gets_a_warning():
    parsed = parse(
        "from nbsched import Service\nimport json\n"
        "class A(Service):\n    def handle(self):\n        self.response.payload = json.dumps(threshold)\n"
    )
    assert parsed.warnings == [
        "<cell>, line 5: 'threshold' is neither defined nor imported here; the runner will not have it "
        "(define or import it in this cell or file)."
    ]


def test_the_version_is_a_hash_of_the_source():
    assert source_version("a") == source_version("a") != source_version("b")
    assert len(source_version("a")) == 12


def test_a_folder_deploys_its_python_files_except_private_ones(tmp_path):
    (tmp_path / "one.py").write_text("x = 1\n")
    (tmp_path / "_helpers.py").write_text("y = 2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "two.py").write_text("z = 3\n")
    origins = [unit["origin"] for unit in source_units(tmp_path)]
    assert origins == [str(tmp_path / "one.py"), str(tmp_path / "sub" / "two.py")]


def test_source_text_and_missing_paths():
    assert source_units("class A(Service):\n    pass\n")[0]["origin"] == "<string>"
    with pytest.raises(DeployError, match="no such file or folder"):
        source_units("nowhere/service.py")
