"""Local fake ESP servers (Mailchimp, SendGrid, Klaviyo) with fault injection, for tests."""

from .klaviyo import FakeKlaviyo
from .mailchimp import FakeMailchimp
from .sendgrid import FakeSendGrid
from .server import FakeEsp, Fault

__all__ = ["FakeEsp", "FakeKlaviyo", "FakeMailchimp", "FakeSendGrid", "Fault"]
