#!/usr/bin/env python3
"""Regenerates config/server.properties from broker/src/config/keys.rs.

Run after adding a key; broker/tests/sample_config.rs fails until you do."""
import pathlib, re

root = pathlib.Path(__file__).resolve().parent.parent
src = (root / "broker/src/config/keys.rs").read_text()
rows = re.findall(r'key\(\s*"([^"]+)",\s*(\w+),\s*(None|Some\("([^"]*)"\)),\s*"((?:[^"\\]|\\.)*)",?\s*\)', src)
ignored = re.findall(r'ignored\("([^"]+)"', src)
out = [
    "# Millrace server configuration: Kafka's own key names.",
    "#",
    "# Every key the broker understands is listed here with its built-in default.",
    "# Lines starting with # are comments; uncomment a line to change a value.",
    "# Precedence, lowest first: built-in defaults, this file, --override key=value,",
    "# then environment variables (MILLRACE_ + the key upper-cased, dots as underscores,",
    "# e.g. MILLRACE_LOG_DIRS=/var/lib/millrace). Unknown keys stop the start.",
    "",
]
for name, _kind, default, value, doc in rows:
    out.append(f"# {doc}")
    out.append(f"#{name}=" if default == "None" else f"#{name}={value}")
    out.append("")
out.append("# Accepted so that existing Kafka configs start unchanged; they have no effect yet")
out.append("# and the broker logs a warning for each one that is set:")
out += [f"#   {n}" for n in ignored]
(root / "config/server.properties").write_text("\n".join(out) + "\n")
