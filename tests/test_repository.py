"""Offline stand-ins for the hassfest and HACS checks CI cannot run here.

hassfest and the HACS action need Docker and GitHub; these tests re-check the rules they apply
to a custom integration plus our own promises
(quality_scale.yaml, README, requirements).
"""

from __future__ import annotations

import ast
import importlib
import json
import re
import struct
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION  # noqa: N812

ROOT = Path(__file__).parent.parent
INTEGRATION = ROOT / "custom_components" / "ha_ingestor"
DOMAIN = "ha_ingestor"

# hassfest's CUSTOM_INTEGRATION_MANIFEST_SCHEMA: core keys + version, issue_tracker, import_executor
MANIFEST_KEYS = {
    "domain", "name", "after_dependencies", "bluetooth", "codeowners", "config_flow",
    "dependencies", "dhcp", "disabled", "documentation", "homekit", "import_executor",
    "integration_type", "iot_class", "issue_tracker", "loggers", "mqtt", "preview_features",
    "quality_scale", "requirements", "single_config_entry", "ssdp", "usb", "version", "zeroconf",
}  # fmt: skip
IOT_CLASSES = {
    "assumed_state", "cloud_polling", "cloud_push", "local_polling", "local_push", "calculated",
}  # fmt: skip
HACS_KEYS = {
    "name", "content_in_root", "country", "filename", "hacs", "hide_default_branch",
    "homeassistant", "persistent_directory", "render_readme", "zip_release",
}  # fmt: skip
QUALITY_SCALE_RULES = {
    # Bronze
    "action-setup", "appropriate-polling", "brands", "common-modules",
    "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
    "docs-triggers", "docs-conditions", "docs-high-level-description",
    "docs-installation-instructions", "docs-removal-instructions", "entity-event-setup",
    "entity-unique-id", "has-entity-name", "runtime-data", "test-before-configure",
    "test-before-setup", "unique-config-entry",
    # Silver
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    # Gold
    "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
    "docs-examples", "docs-known-limitations", "docs-supported-devices",
    "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
    "entity-category", "entity-device-class", "entity-disabled-by-default",
    "entity-translations", "exception-translations", "icon-translations",
    "reconfiguration-flow", "repair-issues", "stale-devices",
    # Platinum
    "async-dependency", "inject-websession", "strict-typing",
}  # fmt: skip
PLATFORM_MODULES = ("sensor", "binary_sensor")


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = _json(INTEGRATION / "manifest.json")
    return manifest


def _leaf_paths(tree: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if isinstance(tree, dict):
        paths: set[tuple[str, ...]] = set()
        for key, value in tree.items():
            paths |= _leaf_paths(value, (*prefix, key))
        return paths
    return {prefix}


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_manifest_keys_are_known_required_and_in_hassfest_order() -> None:
    manifest = _manifest()
    keys = list(manifest)
    assert set(keys) <= MANIFEST_KEYS, f"unknown keys: {set(keys) - MANIFEST_KEYS}"
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:]), "Manifest keys are not sorted correctly"
    for required in ("version", "iot_class", "documentation", "issue_tracker", "codeowners"):
        assert required in manifest


def test_manifest_values_follow_hassfest_and_hacs() -> None:
    manifest = _manifest()
    assert manifest["domain"] == INTEGRATION.name == DOMAIN
    assert manifest["iot_class"] in IOT_CLASSES
    assert manifest["integration_type"] == "service"
    assert AwesomeVersion(manifest["version"]).valid
    for key in ("documentation", "issue_tracker"):
        assert manifest[key].startswith("https://")
        assert not manifest[key].startswith("https://www.home-assistant.io/integrations")
    assert manifest["codeowners"]
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    assert manifest["config_flow"] is (INTEGRATION / "config_flow.py").exists()


def test_requirements_are_pinned_and_are_what_the_tests_run() -> None:
    for requirement in _manifest()["requirements"]:
        name, _, version = requirement.partition("==")
        assert version, f"{requirement} is not pinned with =="
        distribution = re.sub(r"\[.*\]", "", name)
        assert metadata.version(distribution) == version


def test_hacs_json_has_only_known_keys_and_a_tested_minimum() -> None:
    hacs = _json(ROOT / "hacs.json")
    assert set(hacs) <= HACS_KEYS
    assert hacs["name"]
    # The minimum we promise must not be newer than a version the suite runs on.
    assert AwesomeVersion(hacs["homeassistant"]) <= AwesomeVersion(HA_VERSION)
    assert hacs["homeassistant"] in (ROOT / "README.md").read_text(encoding="utf-8")


def test_exactly_one_integration_for_hacs() -> None:
    integrations = [p for p in (ROOT / "custom_components").iterdir() if p.is_dir()]
    assert [p.name for p in integrations if not p.name.startswith("__")] == [DOMAIN]


def test_english_translation_is_strings_json() -> None:
    assert _json(INTEGRATION / "translations" / "en.json") == _json(INTEGRATION / "strings.json")


@pytest.mark.parametrize(
    "path", sorted((INTEGRATION / "translations").glob("*.json")), ids=lambda p: p.name
)
def test_translations_are_complete_and_carry_no_urls(path: Path) -> None:
    strings = _leaf_paths(_json(INTEGRATION / "strings.json"))
    translation = _json(path)
    assert _leaf_paths(translation) == strings
    for value in json.dumps(translation).split('"'):
        assert not re.search(r"https?://", value), f"URL in {path.name}: {value}"


def test_every_icon_has_a_translation_key() -> None:
    icons = _json(INTEGRATION / "icons.json")
    strings = _json(INTEGRATION / "strings.json")
    for platform, keys in icons.get("entity", {}).items():
        for key in keys:
            assert key in strings["entity"][platform], f"icon for unknown entity.{platform}.{key}"
    services = set(yaml.safe_load((INTEGRATION / "services.yaml").read_text()) or {})
    assert set(icons.get("services", {})) == services
    assert set(strings.get("services", {})) == services


@pytest.mark.parametrize(
    ("name", "size"),
    [("icon.png", 256), ("icon@2x.png", 512), ("dark_icon.png", 256), ("dark_icon@2x.png", 512)],
)
def test_brand_images_are_present_at_their_sizes(name: str, size: int) -> None:
    assert _png_size(INTEGRATION / "brand" / name) == (size, size)


def test_quality_scale_lists_every_rule_honestly() -> None:
    scale = yaml.safe_load((INTEGRATION / "quality_scale.yaml").read_text(encoding="utf-8"))
    rules = scale["rules"]
    assert set(rules) == QUALITY_SCALE_RULES
    for rule, value in rules.items():
        if isinstance(value, dict):
            assert value["status"] in {"done", "todo", "exempt"}, rule
            if value["status"] == "exempt":
                assert value.get("comment", "").strip(), f"{rule}: exempt needs a comment"
        else:
            assert value in {"done", "todo"}, f"{rule}: {value!r} (exempt needs a comment)"


def _modules() -> list[str]:
    modules = set()
    for path in INTEGRATION.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(modules)


@pytest.mark.parametrize("module", _modules())
def test_every_module_imports(module: str) -> None:
    # A config flow that fails to import only shows as "Invalid handler specified" in the UI.
    importlib.import_module(module)


@pytest.mark.parametrize("path", sorted((INTEGRATION / "api").rglob("*.py")), ids=lambda p: p.name)
def test_api_package_has_no_home_assistant_import(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        assert not any(name.split(".")[0] == "homeassistant" for name in names), path.name


@pytest.mark.parametrize("platform", PLATFORM_MODULES)
def test_every_platform_sets_parallel_updates(platform: str) -> None:
    tree = ast.parse((INTEGRATION / f"{platform}.py").read_text(encoding="utf-8"))
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert "PARALLEL_UPDATES" in assigned


# Documents outside this repository, which a newcomer cannot open: built from parts so that
# this file does not name them itself.
_OUTSIDE_DOCUMENTS = (
    "../" + "shared",
    "product" + ".md",
    "ingestor-" + "interfaces",
    "ha-integration-" + "reference",
    "contracts " + "\N{SECTION SIGN}",
    "\N{SECTION SIGN}",
)
_CHECKED_TREES = ("custom_components", "tests", "scripts", "benchmarks", "docs")
_TEXT_SUFFIXES = {".py", ".md", ".yaml", ".json", ".toml", ".sh", ".ambr", ""}
# `docs/<name>.md#<anchor>` anywhere, or `<name>.md#<anchor>` inside docs/.
_DOC_POINTER = re.compile(r"(?:docs/)?(architecture|ingestor-contracts)\.md#([A-Za-z0-9_-]+)")


def _text_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for tree in _CHECKED_TREES:
        files.extend(
            path
            for path in sorted((ROOT / tree).rglob("*"))
            if path.is_file() and path.suffix in _TEXT_SUFFIXES and "__pycache__" not in path.parts
        )
    return files


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", document.read_text(encoding="utf-8"), re.MULTILINE)
    return {_slug(heading) for heading in headings}


def test_no_file_points_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _text_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(document in line for document in _OUTSIDE_DOCUMENTS)
    ]
    assert not offenders, "point into docs/ instead:\n" + "\n".join(offenders)


def test_every_pointer_into_docs_names_an_existing_heading() -> None:
    anchors = {
        name: _anchors(ROOT / "docs" / f"{name}.md")
        for name in ("architecture", "ingestor-contracts")
    }
    pointers = [
        (path, match.group(1), match.group(2))
        for path in _text_files()
        for match in _DOC_POINTER.finditer(path.read_text(encoding="utf-8"))
    ]
    assert len(pointers) >= 20  # the code's comments point here; a broken regex finds none
    missing = [
        f"{path.relative_to(ROOT)}: {name}.md#{anchor}"
        for path, name, anchor in pointers
        if anchor not in anchors[name]
    ]
    # Links inside a document: `[...](#anchor)`.
    missing.extend(
        f"docs/{name}.md: #{anchor}"
        for name, known in anchors.items()
        for anchor in re.findall(
            r"\]\(#([A-Za-z0-9_-]+)\)", (ROOT / "docs" / f"{name}.md").read_text(encoding="utf-8")
        )
        if anchor not in known
    )
    assert not missing, "\n".join(missing)
