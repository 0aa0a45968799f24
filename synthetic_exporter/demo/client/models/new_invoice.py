from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.currency import Currency

T = TypeVar("T", bound="NewInvoice")


@_attrs_define
class NewInvoice:
    """What to bill.

    Attributes:
        amount_pence (int): Amount in the currency's minor unit.
        currency (Currency): ISO 4217 code.
        description (str):
    """

    amount_pence: int
    currency: Currency
    description: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        amount_pence = self.amount_pence

        currency = self.currency.value

        description = self.description

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "amount_pence": amount_pence,
                "currency": currency,
                "description": description,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        amount_pence = d.pop("amount_pence")

        currency = Currency(d.pop("currency"))

        description = d.pop("description")

        new_invoice = cls(
            amount_pence=amount_pence,
            currency=currency,
            description=description,
        )

        new_invoice.additional_properties = d
        return new_invoice

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
