"""Why an export run stopped: the run catches these (and ``aws.AwsError``) and says so."""


class ExportError(Exception):
    """A run stopped; nothing after the last accepted object was marked delivered."""


class LeaseLost(ExportError):
    """Another run took over this tenant (our lease expired)."""
