from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="Customer")


@_attrs_define
class Customer:
    """A customer.

    Attributes:
        id (str):
        email (str):
        name (str):
        confirmed (bool):
        synthetic (bool): Created by a request carrying the X-Synthetic-Test header.
        created_at (datetime.datetime):
    """

    id: str
    email: str
    name: str
    confirmed: bool
    synthetic: bool
    created_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        email = self.email

        name = self.name

        confirmed = self.confirmed

        synthetic = self.synthetic

        created_at = self.created_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "email": email,
                "name": name,
                "confirmed": confirmed,
                "synthetic": synthetic,
                "created_at": created_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        id = d.pop("id")

        email = d.pop("email")

        name = d.pop("name")

        confirmed = d.pop("confirmed")

        synthetic = d.pop("synthetic")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        customer = cls(
            id=id,
            email=email,
            name=name,
            confirmed=confirmed,
            synthetic=synthetic,
            created_at=created_at,
        )

        customer.additional_properties = d
        return customer

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
