"""Maps the top-level component folders to ``streamtriage.*`` import names.

The folder tree shows the data flow (instrumentation -> collector -> classifier), while the
import names stay under one distribution. Sub-packages are discovered so new ones need no edit here.
"""
from pathlib import Path

from setuptools import find_packages, setup

COMPONENTS = {
    "streamtriage": "streamtriage",
    "streamtriage.instrumentation": "instrumentation",
    "streamtriage.collector": "collector",
    "streamtriage.classifier": "classifier",
    "streamtriage.simulator": "simulator",
    "streamtriage.dashboards": "dashboards",
}

packages: list[str] = []
package_dir: dict[str, str] = {}
for name, folder in COMPONENTS.items():
    packages.append(name)
    package_dir[name] = folder
    for sub in find_packages(where=folder):
        packages.append(f"{name}.{sub}")
        package_dir[f"{name}.{sub}"] = str(Path(folder, *sub.split(".")))

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={"": ["*.yaml", "*.yml", "*.json", "*.sql", "*.md"]},
    include_package_data=True,
)
