"""docs/embedding.md cannot drift from the code: every ```kotlin block of the guide is a
region (`// guide: NAME` ... `// guide: end`) of the Kotlin suite's sources, which the suite
compiles and runs (ffi/tests/kotlin), and every region is quoted. The Gradle snippet names
the versions the suite is built with."""
import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "embedding.md"
KOTLIN = ROOT / "ffi" / "tests" / "kotlin"
# Kotlin shipped with the Android build, not generated (the JNI half of src/android.rs).
ANDROID_SUPPORT = ROOT / "ffi" / "android-support"


def blocks(markdown, language):
    """Fenced blocks of `language`, dedented by their fence's indentation."""
    out = []
    for m in re.finditer(r"^( *)```" + language + r"\n(.*?)^\1```$", markdown, re.M | re.S):
        indent = len(m.group(1))
        lines = m.group(2).splitlines()
        assert all(not line.strip() or line.startswith(" " * indent) for line in lines), m.group(0)
        out.append("\n".join(line[indent:] for line in lines))
    return out


def regions():
    found = {}
    for path in sorted([*(KOTLIN / "src").rglob("*.kt"), *ANDROID_SUPPORT.rglob("*.kt")]):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"^[ \t]*// guide: ([\w-]+)\n(.*?)^[ \t]*// guide: end$", text, re.M | re.S):
            assert m.group(1) != "end" and m.group(1) not in found, f"region {m.group(1)} twice"
            found[m.group(1)] = textwrap.dedent(m.group(2)).rstrip("\n")
    return found


def test_every_kotlin_block_of_the_guide_is_compiled_code():
    guide = GUIDE.read_text(encoding="utf-8")
    quoted = blocks(guide, "kotlin")
    code = regions()
    assert len(quoted) >= 6 and len(code) >= 6, (len(quoted), len(code))
    by_text = {text: name for name, text in code.items()}
    for block in quoted:
        assert block in by_text, "a ```kotlin block of docs/embedding.md is not in the Kotlin suite:\n" + block
    unquoted = set(code) - {by_text[b] for b in quoted}
    assert not unquoted, f"regions not quoted in docs/embedding.md: {sorted(unquoted)}"


def test_the_gradle_snippet_names_the_versions_the_suite_uses():
    pom = (KOTLIN / "pom.xml").read_text(encoding="utf-8")
    version = {k: re.search(rf"<{k}>([^<]+)</{k}>", pom).group(1) for k in ("jna.version", "coroutines.version")}
    (gradle,) = blocks(GUIDE.read_text(encoding="utf-8"), "kts")
    assert f'"net.java.dev.jna:jna:{version["jna.version"]}@aar"' in gradle, gradle
    assert f'"org.jetbrains.kotlinx:kotlinx-coroutines-android:{version["coroutines.version"]}"' in gradle, gradle


def test_the_checker_sees_a_changed_block():
    guide = GUIDE.read_text(encoding="utf-8")
    code = set(regions().values())
    first = blocks(guide, "kotlin")[0]
    assert first in code and first.replace("(", "( ", 1) not in code


def test_the_android_init_names_the_native_function_the_library_exports():
    """The Kotlin `external fun` and the Rust JNI export must name the same symbol."""
    kotlin = (ANDROID_SUPPORT / "uniffi" / "doorstep_ffi" / "DoorstepAndroid.kt").read_text(encoding="utf-8")
    rust = (ROOT / "ffi" / "src" / "android.rs").read_text(encoding="utf-8")
    package = re.search(r"^package ([\w.]+)$", kotlin, re.M).group(1)
    (klass,) = re.findall(r"^object (\w+)", kotlin, re.M)
    (method,) = re.findall(r"external fun (\w+)\(context: Context\)", kotlin)
    (mangle,) = re.findall(r'#\[jni::jni_mangle\("([\w.]+)"\)\]\s*pub fn (\w+)', rust)
    camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), mangle[1])
    assert (mangle[0], camel) == (f"{package}.{klass}", method), (mangle, package, klass, method)


def test_the_documented_verifier_component_is_the_locked_one():
    """The Gradle coordinates of the platform verifier's Kotlin half must carry the version
    of `rustls-platform-verifier-android` in Cargo.lock (a mismatch crashes at run time)."""
    lock = (ROOT / "Cargo.lock").read_text(encoding="utf-8")
    version = re.search(r'name = "rustls-platform-verifier-android"\nversion = "([^"]+)"', lock).group(1)
    assert f'"rustls:rustls-platform-verifier:{version}"' in GUIDE.read_text(encoding="utf-8"), version
