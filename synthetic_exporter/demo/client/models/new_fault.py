from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="NewFault")


@_attrs_define
class NewFault:
    """A fault to inject into matching requests.

    Attributes:
        path (str): Path prefix, e.g. /invoices or /cdn.
        method (None | str | Unset): Only this method; any when unset.
        status (int | None | Unset): Answer with this status instead of calling the handler.
        delay_ms (int | Unset): Delay before the request is handled (nothing has changed yet). Default: 0.
        delay_after_ms (int | Unset): Delay the answer after the request was handled (a create has happened, the client
            waits). Default: 0.
    """

    path: str
    method: None | str | Unset = UNSET
    status: int | None | Unset = UNSET
    delay_ms: int | Unset = 0
    delay_after_ms: int | Unset = 0
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        path = self.path

        method: None | str | Unset
        if isinstance(self.method, Unset):
            method = UNSET
        else:
            method = self.method

        status: int | None | Unset
        if isinstance(self.status, Unset):
            status = UNSET
        else:
            status = self.status

        delay_ms = self.delay_ms

        delay_after_ms = self.delay_after_ms

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "path": path,
            }
        )
        if method is not UNSET:
            field_dict["method"] = method
        if status is not UNSET:
            field_dict["status"] = status
        if delay_ms is not UNSET:
            field_dict["delay_ms"] = delay_ms
        if delay_after_ms is not UNSET:
            field_dict["delay_after_ms"] = delay_after_ms

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        path = d.pop("path")

        def _parse_method(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        method = _parse_method(d.pop("method", UNSET))

        def _parse_status(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        status = _parse_status(d.pop("status", UNSET))

        delay_ms = d.pop("delay_ms", UNSET)

        delay_after_ms = d.pop("delay_after_ms", UNSET)

        new_fault = cls(
            path=path,
            method=method,
            status=status,
            delay_ms=delay_ms,
            delay_after_ms=delay_after_ms,
        )

        new_fault.additional_properties = d
        return new_fault

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
