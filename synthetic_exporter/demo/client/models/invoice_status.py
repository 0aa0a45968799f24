from enum import StrEnum


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAID = "paid"
    REFUNDED = "refunded"
    VOID = "void"

    def __str__(self) -> str:
        return str(self.value)
