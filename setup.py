"""The one build step setup.cfg cannot declare: the wheel carries compiled catalogues.

The ``.mo`` files are built from the committed ``.po`` files with Babel (declared in pyproject.toml's
``[build-system] requires``) straight into the build directory, so they never appear in the checkout
through a build; ``make setup`` compiles them in place for development (an editable install)."""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

TRANSLATIONS = os.path.join("idp", "translations")


class BuildWithCatalogues(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:
            self.compile_catalogues()

    def compile_catalogues(self):
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for language in sorted(os.listdir(TRANSLATIONS)):
            source = os.path.join(TRANSLATIONS, language, "LC_MESSAGES", "messages.po")
            if not os.path.isfile(source):
                continue
            target = os.path.join(self.build_lib, source[: -len(".po")] + ".mo")
            self.mkpath(os.path.dirname(target))
            with open(source, "rb") as fh:
                catalog = read_po(fh, locale=language)
            # Like `pybabel compile`: fuzzy entries are left out, the rest is served as translated.
            with open(target, "wb") as fh:
                write_mo(fh, catalog, use_fuzzy=False)
            self.announce(f"compiled {source} -> {target}", level=2)


setup(cmdclass={"build_py": BuildWithCatalogues})
