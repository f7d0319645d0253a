"""Why an export run stopped (the run catches these and ``aws.AwsError``), or did not start."""


class ExportError(Exception):
    """A run stopped; nothing after the last accepted object was marked delivered."""


class LeaseLost(ExportError):
    """Another run took over this tenant (our lease expired)."""


class ExportNowRefused(Exception):
    """Export now cannot start; the message says why, in words for the page."""
