"""Contains all the data models used in inputs/outputs"""

from .card import Card
from .challenge import Challenge
from .challenge_answer import ChallengeAnswer
from .challenge_link import ChallengeLink
from .confirm import Confirm
from .currency import Currency
from .customer import Customer
from .customer_list import CustomerList
from .delay_delayed import DelayDelayed
from .error import Error
from .error_fields_type_0 import ErrorFieldsType0
from .health import Health
from .invoice import Invoice
from .invoice_list import InvoiceList
from .invoice_status import InvoiceStatus
from .login import Login
from .new_customer import NewCustomer
from .new_fault import NewFault
from .new_invoice import NewInvoice
from .payment import Payment
from .payment_status import PaymentStatus
from .session import Session
from .sign_up import SignUp

__all__ = (
    "Card",
    "Challenge",
    "ChallengeAnswer",
    "ChallengeLink",
    "Confirm",
    "Currency",
    "Customer",
    "CustomerList",
    "DelayDelayed",
    "Error",
    "ErrorFieldsType0",
    "Health",
    "Invoice",
    "InvoiceList",
    "InvoiceStatus",
    "Login",
    "NewCustomer",
    "NewFault",
    "NewInvoice",
    "Payment",
    "PaymentStatus",
    "Session",
    "SignUp",
)
