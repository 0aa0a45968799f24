from enum import StrEnum


class PaymentStatus(StrEnum):
    REFUNDED = "refunded"
    REQUIRES_CHALLENGE = "requires_challenge"
    SUCCEEDED = "succeeded"

    def __str__(self) -> str:
        return str(self.value)
