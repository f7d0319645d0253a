"""The settings page's form; the rules live in the model's validators and the service."""

from django import forms

REGION_HELP = "The bucket's AWS region, e.g. us-east-1."


class ExportSettingsForm(forms.Form):
    """The editable export settings (never static AWS keys: a role is assumed)."""

    enabled = forms.BooleanField(required=False, label="Export to S3 every 15 minutes")
    bucket = forms.CharField(required=False, max_length=63)
    region = forms.CharField(required=False, max_length=32, help_text=REGION_HELP)
    prefix = forms.CharField(
        required=False, max_length=200, help_text="Optional key prefix, e.g. tines/audit."
    )
    role_arn = forms.CharField(
        required=False,
        max_length=2048,
        label="Role ARN",
        help_text="The IAM role we assume; it needs only s3:PutObject.",
    )
