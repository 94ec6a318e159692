"""Model metadata in the style of spandrel: what a model does and what input it needs."""

from __future__ import annotations

from dataclasses import dataclass

from treeattn.validate import check_int

__all__ = ["TASKS", "ModelMeta"]

# What a model can restore (``config.task`` is checked against it); ``restore`` is generic.
TASKS: tuple[str, ...] = (
    "sr",
    "denoise",
    "jpeg",
    "deblur",
    "defocus",
    "demosaic",
    "weather",
    "restore",
)


@dataclass(frozen=True)
class ModelMeta:
    """What a restoration model does and what it needs from its input.

    Attributes:
        name: Registry name the model was created from (``"custom"`` for a bare config).
        task: What it restores, one of :data:`TASKS`.
        scale: Output size / input size.
        in_chans: Input channels.
        out_chans: Output channels.
        multiple_of: The model pads its input (bottom/right, reflect) to a multiple of this and
            crops the result back, so any size works; inputs already a multiple of it are not
            padded by the model (tree layers inside may still pad their own maps).
        minimum: Smallest input height/width the model accepts.
        supports_bf16: A bfloat16 forward is tested to run and to match float32 closely.
        supports_fp16: A float16 forward is tested (``False``: not claimed).
    """

    name: str
    task: str
    scale: int
    in_chans: int
    out_chans: int
    multiple_of: int
    minimum: int
    supports_bf16: bool
    supports_fp16: bool

    def padding_for(self, height: int, width: int) -> tuple[int, int]:
        """Bottom and right padding that make an input of ``height × width`` need no model padding.

        Args:
            height: Input height in pixels.
            width: Input width in pixels.

        Returns:
            ``(pad_bottom, pad_right)``: the amounts to reach at least ``minimum`` and the next
            multiple of ``multiple_of``.

        Raises:
            ValueError: if a size is not positive.
        """
        if check_int("height", height) < 1 or check_int("width", width) < 1:
            raise ValueError(f"{height=} and {width=} must be positive")
        return self._pad(height), self._pad(width)

    def _pad(self, size: int) -> int:
        target = max(size, self.minimum)
        target += (-target) % self.multiple_of
        return target - size
