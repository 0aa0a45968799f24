from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.payment_status import PaymentStatus

if TYPE_CHECKING:
    from ..models.challenge_link import ChallengeLink


T = TypeVar("T", bound="Payment")


@_attrs_define
class Payment:
    """A card payment of an invoice.

    Attributes:
        id (str):
        invoice_id (str):
        amount_pence (int):
        status (PaymentStatus): requires_challenge until the challenge is answered, then succeeded; maybe refunded.
        challenge (ChallengeLink): Where to answer the payment's challenge.
    """

    id: str
    invoice_id: str
    amount_pence: int
    status: PaymentStatus
    challenge: ChallengeLink
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        id = self.id

        invoice_id = self.invoice_id

        amount_pence = self.amount_pence

        status = self.status.value

        challenge = self.challenge.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "id": id,
                "invoice_id": invoice_id,
                "amount_pence": amount_pence,
                "status": status,
                "challenge": challenge,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.challenge_link import ChallengeLink

        d = dict(src_dict)
        id = d.pop("id")

        invoice_id = d.pop("invoice_id")

        amount_pence = d.pop("amount_pence")

        status = PaymentStatus(d.pop("status"))

        challenge = ChallengeLink.from_dict(d.pop("challenge"))

        payment = cls(
            id=id,
            invoice_id=invoice_id,
            amount_pence=amount_pence,
            status=status,
            challenge=challenge,
        )

        payment.additional_properties = d
        return payment

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
