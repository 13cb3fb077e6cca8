"""The base of the k-bit quantizers (HWGQ, PACT, WRPN): their bit width, held and saved once."""

from __future__ import annotations

from larq.quantizers import _BaseQuantizer


class KBitQuantizer(_BaseQuantizer):
    """A quantizer to `k_bit` bits; reports them as `precision` and saves them in its config.

    Subclasses check `k_bit` (their methods allow different ranges) before calling this.
    """

    def __init__(self, k_bit: int = 2, **kwargs):
        self.k_bit = int(k_bit)
        super().__init__(**kwargs)

    @property
    def precision(self) -> int:
        return self.k_bit

    def get_config(self):
        return {**super().get_config(), "k_bit": self.k_bit}
