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
import shutil
import struct
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from awesomeversion import AwesomeVersion
from homeassistant.const import __version__ as HA_VERSION  # noqa: N812

from tests.support.imports import Room, layer_problems

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
# The platforms the integration forwards its entries to (Platform members are strings).
PLATFORM_MODULES = tuple(
    str(platform) for platform in importlib.import_module(f"custom_components.{DOMAIN}").PLATFORMS
)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys: a second "binary_sensor" block in
    # icons.json once hid the first one's icons.
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), (
        f"duplicate keys: {sorted(k for k in keys if keys.count(k) > 1)}"
    )
    return dict(pairs)


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)


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


def _card_fallback() -> dict[str, str]:
    """The English words the card's module carries for before its translations load."""
    source = (INTEGRATION / "frontend" / "ha-ingestor-flow-card.js").read_text(encoding="utf-8")
    block = re.search(r"^const FALLBACK = \{\n(.*?)^\};", source, re.MULTILINE | re.DOTALL)
    assert block, "no FALLBACK in the card"
    return {
        key: json.loads(text)
        for key, text in re.findall(r'^  (\w+): ("(?:[^"\\]|\\.)*"),$', block[1], re.MULTILINE)
    }


def test_the_cards_words_are_translations_and_its_fallback_is_the_english() -> None:
    words = _json(INTEGRATION / "strings.json")["selector"]["card"]["options"]
    assert _card_fallback() == words
    source = (INTEGRATION / "frontend" / "ha-ingestor-flow-card.js").read_text(encoding="utf-8")
    used = set(re.findall(r'word\(\s*(?:hass|this\._hass),\s*"(\w+)"', source))
    used |= set(re.findall(r'"(editor_\w+)"', source))
    assert used == set(words), set(words) ^ used


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


# --- quality_scale.yaml: every claim a test can check ------------------------------------------


def _scale() -> dict[str, Any]:
    rules: dict[str, Any] = yaml.safe_load(
        (INTEGRATION / "quality_scale.yaml").read_text(encoding="utf-8")
    )["rules"]
    return rules


def _status(rule: str) -> str:
    value = _scale()[rule]
    return str(value["status"] if isinstance(value, dict) else value)


def _comment(rule: str) -> str:
    value = _scale()[rule]
    return " ".join(str(value.get("comment", "")).split()) if isinstance(value, dict) else ""


def _readme_headings() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {h.strip() for h in re.findall(r"^#{2,3} (.+)$", text, re.MULTILINE)}


def _strings() -> dict[str, Any]:
    strings: dict[str, Any] = _json(INTEGRATION / "strings.json")
    return strings


def _descriptions(platform: str) -> list[Any]:
    """Every entity description a platform module defines (its module-level tuples of them)."""
    from homeassistant.helpers.entity import EntityDescription  # noqa: PLC0415

    module = importlib.import_module(f"custom_components.{DOMAIN}.{platform}")
    return [
        item
        for value in vars(module).values()
        if isinstance(value, tuple)
        for item in value
        if isinstance(item, EntityDescription)
    ]


def _integration_sources() -> dict[str, str]:
    return {
        str(path.relative_to(INTEGRATION)): path.read_text(encoding="utf-8")
        for path in sorted(INTEGRATION.rglob("*.py"))
    }


@pytest.mark.parametrize("rule", sorted(r for r in QUALITY_SCALE_RULES if r.startswith("docs-")))
def test_docs_rules_name_readme_sections_that_exist(rule: str) -> None:
    quoted = re.findall(r'"([^"]+)"', _comment(rule))
    if _status(rule) == "done":
        assert quoted, f"{rule}: the comment names no README section"
    assert set(quoted) <= _readme_headings(), f"{rule}: {set(quoted) - _readme_headings()}"


def test_files_the_quality_scale_names_exist() -> None:
    named = {
        token.rstrip(").,")
        for rule in QUALITY_SCALE_RULES
        for token in _comment(rule).split()
        if re.search(r"\.(py|yaml|json)\b|/$", token.rstrip(").,"))
    }
    assert named  # the comments do name files; a broken pattern finds none
    for token in named:
        path = token.strip("(")
        assert (ROOT / path).exists() or (INTEGRATION / path).exists(), path


def test_dependency_transparency_matches_the_manifest() -> None:
    requirements = _manifest()["requirements"]
    if _status("dependency-transparency") == "exempt":
        # Exempt only for a library that ships inside the integration, unpublished.
        assert requirements == []
        assert "not published" in _comment("dependency-transparency")
    else:
        assert requirements, "done needs requirements published with their sources"


def test_unique_config_entry_is_the_servers_host_and_port() -> None:
    from custom_components.ha_ingestor.config_flow import unique_id_for  # noqa: PLC0415

    assert "host:port" in _comment("unique-config-entry")
    one = unique_id_for({"url": "http://InfluxDB.lan:8086/", "bucket": "a", "organization": "x"})
    other = unique_id_for({"url": "https://influxdb.lan:8086/proxy", "bucket": "b"})
    assert one == other == "influxdb.lan:8086"
    assert unique_id_for({"url": "http://influxdb.lan:9999"}) != one
    admin_only = unique_id_for({"admin_api_url": "http://admin.lan:8003", "bucket": "a"})
    assert admin_only == "admin.lan:8003"


def test_runtime_data_is_typed_and_used() -> None:
    from homeassistant.config_entries import ConfigEntry  # noqa: PLC0415

    from custom_components.ha_ingestor.runtime import (  # noqa: PLC0415
        HaIngestorConfigEntry,
        HaIngestorRuntimeData,
    )

    assert HaIngestorConfigEntry.__value__ == ConfigEntry[HaIngestorRuntimeData]
    sources = _integration_sources()
    assert "entry.runtime_data = " in sources["__init__.py"]
    # Entry state lives in runtime_data; hass.data holds only what belongs to no entry (the
    # card's URL, whether the one panel is shown), under typed HassKeys (ours or Home
    # Assistant's own), never DOMAIN.
    for name, source in sources.items():
        for keyed in re.findall(r"hass\.data(?:\[|\.get\(|\.setdefault\()(\w+)", source):
            assert keyed != "DOMAIN", f"{name} keeps entry state in hass.data[DOMAIN]"
            ours = re.search(rf"^{keyed}: HassKey\[", source, re.MULTILINE)
            core = re.search(rf"from homeassistant\.[\w.]+ import \(?[^)]*\b{keyed}\b", source)
            assert ours or core, f"{name}: {keyed} is no HassKey"


@pytest.mark.parametrize("platform", PLATFORM_MODULES)
def test_entity_translations_exist_for_every_description(platform: str) -> None:
    strings = _strings()["entity"].get(platform, {})
    descriptions = _descriptions(platform)
    assert descriptions
    keys = [d.key for d in descriptions]
    assert len(keys) == len(set(keys)), "entity-unique-id: description keys repeat"
    for description in descriptions:
        key = description.translation_key
        if key is None:
            # Named after its device class by Home Assistant, in every language.
            assert description.device_class is not None, description.key
            continue
        assert key in strings, f"entity.{platform}.{key} missing from strings.json"
        for option in getattr(description, "options", None) or ():
            assert option in strings[key].get("state", {}), f"{key}: state {option!r}"


def test_one_entity_base_with_entity_name_serves_every_entity() -> None:
    tree = ast.parse((INTEGRATION / "entity.py").read_text(encoding="utf-8"))
    bases = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(b, ast.Subscript) and ast.unparse(b.value) == "CoordinatorEntity"
            for b in node.bases
        )
    ]
    assert [b.name for b in bases] == ["HaIngestorEntity"]
    assigned = {
        ast.unparse(target): ast.unparse(node.value)
        for node in bases[0].body
        if isinstance(node, ast.Assign)
        for target in node.targets
    }
    assert assigned.get("_attr_has_entity_name") == "True"
    # Every entity class of every platform stands on it: no second base of the same shape.
    from homeassistant.helpers.entity import Entity  # noqa: PLC0415

    from custom_components.ha_ingestor.entity import HaIngestorEntity  # noqa: PLC0415

    for platform in PLATFORM_MODULES:
        module = importlib.import_module(f"custom_components.{DOMAIN}.{platform}")
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, Entity)
            and value.__module__ == module.__name__
        ]
        assert classes, platform
        assert all(issubclass(c, HaIngestorEntity) for c in classes), platform


_EXCEPTIONS = {
    "ConfigEntryAuthFailed",
    "ConfigEntryError",
    "ConfigEntryNotReady",
    "HomeAssistantError",
    "ServiceValidationError",
    "UpdateFailed",
}


def _string_assignments(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, set[str]]:
    """Every string literal assigned to each plain name inside `function`."""
    assigned: dict[str, set[str]] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                    assigned.setdefault(target.id, set()).add(node.value.value)
    return assigned


def _raised_translation_keys(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    """The `translation_key=` arguments of the Home Assistant exceptions `function` builds."""
    return [
        keyword.value
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _EXCEPTIONS
        for keyword in node.keywords
        if keyword.arg == "translation_key"
    ]


def _exception_translation_keys(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Keys (literal or assigned to the variable passed) and f-string patterns the raises use."""
    literals: set[str] = set()
    patterns: set[str] = set()
    for function in (
        n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
    ):
        assigned = _string_assignments(function)
        for value in _raised_translation_keys(function):
            if isinstance(value, ast.Constant):
                literals.add(str(value.value))
            elif isinstance(value, ast.Name):
                literals |= assigned.get(value.id, set())
            elif isinstance(value, ast.JoinedStr):
                patterns.add(
                    "".join(
                        re.escape(str(part.value)) if isinstance(part, ast.Constant) else ".+"
                        for part in value.values
                    )
                )
    return literals, patterns


def test_exception_translations_cover_every_raise() -> None:
    known = set(_strings()["exceptions"])
    literals: set[str] = set()
    patterns: set[str] = set()
    for name, source in _integration_sources().items():
        if not name.startswith("api"):
            found, shapes = _exception_translation_keys(ast.parse(source))
            literals |= found
            patterns |= shapes
    assert literals, "no translated raise found"
    assert literals <= known, literals - known
    for pattern in patterns:
        assert any(re.fullmatch(pattern, key) for key in known), pattern
    unused = {
        key
        for key in known - literals
        if not any(re.fullmatch(pattern, key) for pattern in patterns)
    }
    assert not unused, f"translations no raise uses: {unused}"


def test_repair_issues_are_translated() -> None:
    from custom_components.ha_ingestor import const  # noqa: PLC0415

    issues = {value for name, value in vars(const).items() if name.startswith("ISSUE_")}
    assert issues
    assert issues == set(_strings()["issues"])


def test_websession_is_injected_never_opened() -> None:
    sources = _integration_sources()
    for name, source in sources.items():
        assert "ClientSession(" not in source, name
        assert "TCPConnector(" not in source, name
    assert "async_get_clientsession(" in sources["clients.py"]


@pytest.mark.parametrize("path", sorted((INTEGRATION / "api").rglob("*.py")), ids=lambda p: p.name)
def test_api_package_speaks_only_asyncio_http(path: Path) -> None:
    # async-dependency: no blocking HTTP client anywhere in the library.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] if isinstance(node, ast.Import) else str(node.module)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not imported & {"requests", "urllib3", "httpx", "urllib.request", "http.client"}


def test_strict_typing_and_test_coverage_are_enforced() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    mypy = pyproject.split("[tool.mypy]", 1)[1].split("\n[", 1)[0]
    assert re.search(r"^strict = true$", mypy, re.MULTILINE)
    assert "custom_components/ha_ingestor" in mypy
    assert "mypy" in (ROOT / "scripts" / "lint").read_text(encoding="utf-8")
    gate = re.search(r"--cov-fail-under=(\d+)", (ROOT / "scripts" / "test").read_text())
    assert gate is not None
    assert int(gate.group(1)) >= 95


# Rule -> the module attribute the claim stands on.
QUALITY_SCALE_CHECKS = {
    "action-setup": ("", "async_setup"),
    "config-entry-unloading": ("", "async_unload_entry"),
    "config-flow": ("config_flow", "HaIngestorConfigFlow"),
    "diagnostics": ("diagnostics", "async_get_config_entry_diagnostics"),
    "reauthentication-flow": ("config_flow", "HaIngestorConfigFlow.async_step_reauth"),
    "reconfiguration-flow": ("config_flow", "HaIngestorConfigFlow.async_step_reconfigure"),
    "stale-devices": ("", "async_remove_config_entry_device"),
}


@pytest.mark.parametrize(("rule", "where"), sorted(QUALITY_SCALE_CHECKS.items()))
def test_done_rules_stand_on_code(rule: str, where: tuple[str, str]) -> None:
    assert _status(rule) == "done"
    module_name, attribute = where
    target: Any = importlib.import_module(
        f"custom_components.{DOMAIN}" + (f".{module_name}" if module_name else "")
    )
    for part in attribute.split("."):
        target = getattr(target, part)
    assert callable(target)


def test_discovery_exemption_matches_the_manifest() -> None:
    if _status("discovery") == "exempt":
        manifest = _manifest()
        assert not {"zeroconf", "ssdp", "dhcp", "usb", "bluetooth", "homekit", "mqtt"} & set(
            manifest
        )


# The package's rooms, lowest rank first (docs/architecture.md#layers). A module may import the
# rooms of a lower rank, and its own room where `inside` allows; never its rank or above. Every
# module must be in a room: a new one finds its place here, in an existing layer.
_API = ("api/core", "api/influx", "api/ingestor", "api/client")
LAYERS = (
    Room("api/core", ("api/core/*",), rank=0),
    Room("api/influx", ("api/influx/*",), rank=1),
    Room("api/ingestor", ("api/ingestor/*",), rank=1),
    Room("api/client", ("api/client.py", "api/__init__.py"), rank=2, inside=False),
    Room(
        "foundation",
        ("const.py", "options.py", "issues.py", "clients.py", "backfill.py"),
        rank=3,
    ),
    Room("coordinators", ("coordinators/*",), rank=4, inside=False),
    Room("runtime", ("runtime.py",), rank=5),
    Room("devices", ("devices.py",), rank=6),
    Room("entity", ("entity.py",), rank=7),
    Room("platforms", tuple(f"{p}.py" for p in PLATFORM_MODULES), rank=8, inside=False),
    Room(
        "entry points",
        (
            "__init__.py",
            "config_flow.py",
            "diagnostics.py",
            "system_health.py",
            "services.py",
            "frontend.py",
            "repairs.py",
        ),
        rank=9,
    ),
)


def test_the_package_has_no_import_circle_and_keeps_its_layers() -> None:
    assert layer_problems(INTEGRATION, LAYERS) == []


def _planted(tmp_path: Path, plants: dict[str, str]) -> Path:
    package = tmp_path / DOMAIN
    shutil.copytree(INTEGRATION, package, ignore=shutil.ignore_patterns("__pycache__"))
    for module, line in plants.items():
        path = package / module
        path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    return package


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        # devices -> sensor -> entity -> devices: a circle and an import upwards.
        (
            "devices.py",
            "from .sensor import SENSORS",
            ["import circle: ", "devices.py (devices) imports sensor.py (platforms)"],
        ),
        # Only under TYPE_CHECKING: still a circle (runtime -> coordinators -> runtime).
        (
            "coordinators/storage.py",
            "if TYPE_CHECKING:\n    from ..runtime import HaIngestorConfigEntry",
            ["import circle: ", "coordinators/storage.py (coordinators) imports runtime.py"],
        ),
        # A coordinator never imports another one.
        (
            "coordinators/delivery.py",
            "from .statistics import StatisticsCoordinator",
            ["coordinators/delivery.py (coordinators) imports coordinators/statistics.py"],
        ),
        # The two sides of the library do not know each other.
        (
            "api/ingestor/parse.py",
            "from ..influx import flux",
            ["api/ingestor/parse.py (api/ingestor) imports api/influx/flux.py (api/influx)"],
        ),
        # The pure core talks to no server.
        (
            "api/core/models.py",
            "from ..influx.names import validate_name",
            ["api/core/models.py (api/core) imports api/influx/names.py (api/influx)"],
        ),
        # Nothing below the entry points needs them.
        (
            "clients.py",
            "from .config_flow import HaIngestorConfigFlow",
            ["clients.py (foundation) imports config_flow.py (entry points)"],
        ),
    ],
)
def test_the_layer_check_fails_on_a_planted_break(
    tmp_path: Path, module: str, line: str, expected: list[str]
) -> None:
    assert layer_problems(_planted(tmp_path, {}), LAYERS) == []
    problems = layer_problems(_planted(tmp_path / "planted", {module: line}), LAYERS)
    for text in expected:
        assert any(text in problem for problem in problems), (text, problems)


def test_a_module_outside_every_room_is_reported(tmp_path: Path) -> None:
    package = _planted(tmp_path, {})
    (package / "helpers.py").write_text('"""A module nobody placed."""\n', encoding="utf-8")
    assert layer_problems(package, LAYERS) == ["helpers.py: in no room of the layer rules"]
