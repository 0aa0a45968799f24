from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.currency import Currency
from ..models.invoice_status import InvoiceStatus

T = TypeVar("T", bound="Invoice")


@_attrs_define
class Invoice:
    """An invoice.

    Attributes:
        id (str):
        customer_id (str):
        amount_pence (int):
        currency (Currency): ISO 4217 code.
        description (str):
        status (InvoiceStatus): open, then void, or paid and maybe refunded.
        synthetic (bool):
        created_at (datetime.datetime):
    """

    id: str
    customer_id: str
    amount_pence: int
    currency: Currency
    description: str
    status: InvoiceStatus
    synthetic: bool
    created_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        customer_id = self.customer_id

        amount_pence = self.amount_pence

        currency = self.currency.value

        description = self.description

        status = self.status.value

        synthetic = self.synthetic

        created_at = self.created_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "customer_id": customer_id,
                "amount_pence": amount_pence,
                "currency": currency,
                "description": description,
                "status": status,
                "synthetic": synthetic,
                "created_at": created_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        id = d.pop("id")

        customer_id = d.pop("customer_id")

        amount_pence = d.pop("amount_pence")

        currency = Currency(d.pop("currency"))

        description = d.pop("description")

        status = InvoiceStatus(d.pop("status"))

        synthetic = d.pop("synthetic")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        invoice = cls(
            id=id,
            customer_id=customer_id,
            amount_pence=amount_pence,
            currency=currency,
            description=description,
            status=status,
            synthetic=synthetic,
            created_at=created_at,
        )

        invoice.additional_properties = d
        return invoice

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
