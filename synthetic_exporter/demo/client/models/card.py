from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Card")


@_attrs_define
class Card:
    """Card details. 4000000000000002 is always declined.

    Attributes:
        card_number (str):
        expiry (str): MM/YY.
        cvc (str):
    """

    card_number: str
    expiry: str
    cvc: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        card_number = self.card_number

        expiry = self.expiry

        cvc = self.cvc

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "card_number": card_number,
                "expiry": expiry,
                "cvc": cvc,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        card_number = d.pop("card_number")

        expiry = d.pop("expiry")

        cvc = d.pop("cvc")

        card = cls(
            card_number=card_number,
            expiry=expiry,
            cvc=cvc,
        )

        card.additional_properties = d
        return card

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
