"""SparkRTC errors: ``{"error_code", "error_msg"}`` with the documented HTTP status."""

from __future__ import annotations

from roomcast.domain.errors import ErrorKind, RoomcastError


class SparkError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def unauthorized(detail: str = "") -> SparkError:
    msg = "OperationUnauthorized: get DomainID fail please check X-Auth-Token or AK/SK"
    return SparkError(400, "RTC.00001001", msg + (f" ({detail})" if detail else ""))


def missing_credentials() -> SparkError:
    # No credentials at all never reaches the service; Huawei's API gateway answers 401 itself.
    return SparkError(401, "APIGW.0301", "Incorrect IAM authentication information: no X-Auth-Token or AK/SK")


def malformed_body() -> SparkError:
    return SparkError(400, "RTC.00001002", "MalformedRequestBody: json parsing failed")


def invalid(detail: str) -> SparkError:
    return SparkError(400, "RTC.00001003", f"InvalidParameterValue: {detail}")


def missing(name: str) -> SparkError:
    return SparkError(400, "RTC.00001005", f"MissingParameter: {name}")


def app_not_found() -> SparkError:
    return SparkError(404, "RTC.00001015", "AppNotExist: app does not exist under your account")


def rule_not_found() -> SparkError:
    return SparkError(404, "RTC.00001011", "RecordRuleNotExist: record rule not exist under your app")


def rule_in_use() -> SparkError:
    return SparkError(400, "RTC.00001013", "RuleForbiddenDelete: rule is associated with backup rule")


def rule_exists(detail: str) -> SparkError:
    return SparkError(400, "RTC.00001019", f"RecordRuleExist: record rule of the app exists ({detail})")


def bucket_missing(detail: str) -> SparkError:
    return SparkError(404, "RTC.00001014", f"BucketNotExist: bucket does not exist ({detail})")


def unsupported_region(location: str) -> SparkError:
    return SparkError(
        400, "RTC.00001012", f"UnsupportRegion: rtc does not provide services in the region ({location})"
    )


def combination(detail: str) -> SparkError:
    return SparkError(400, "RTC.00001004", f"InvalidParameterCombination: {detail}")


def throttled(limit: int, period: str) -> SparkError:
    return SparkError(
        429,
        "APIG.0308",
        "The throttling threshold has been reached: "
        f"policy user over ratelimit,limit:{limit},time:1 {period}",
    )


def internal() -> SparkError:
    return SparkError(500, "RTC.00002001", "InternalServerError")


def from_domain(err: RoomcastError) -> SparkError:
    if err.kind is ErrorKind.NOT_FOUND and err.subject == "app":
        return app_not_found()
    if err.kind is ErrorKind.ALREADY_EXISTS and err.subject == "app_name":
        return SparkError(400, "RTC.00001020", "AppExist: app exists")
    if err.kind is ErrorKind.LIMIT_EXCEEDED and err.subject == "app_quota":
        return SparkError(400, "RTC.00001017", "AppsExceed: app num exceed")
    if err.kind is ErrorKind.FAILED_PRECONDITION and err.subject == "app_busy":
        return SparkError(
            400, "RTC.00001003", f"Deletion failed because the deletion condition is not met: {err.message}"
        )
    if err.kind is ErrorKind.FAILED_PRECONDITION and err.subject == "app_state":
        return SparkError(400, "RTC.00001016", "AppDeactivation: app is stopped")
    if err.subject == "record_rule":
        if err.kind is ErrorKind.NOT_FOUND:
            return rule_not_found()
        if err.kind is ErrorKind.FAILED_PRECONDITION:
            return rule_in_use()
        if err.kind is ErrorKind.ALREADY_EXISTS:
            return rule_exists(err.message)
    if err.kind is ErrorKind.INVALID_ARGUMENT:
        return invalid(err.message)
    if err.kind is ErrorKind.PERMISSION_DENIED:
        return SparkError(400, "RTC.00001021", "NoPermission: policy doesn't allow action to be performed")
    if err.kind is ErrorKind.NOT_FOUND:
        return SparkError(404, "RTC.00001003", f"InvalidParameterValue: {err.message}")
    return internal()
