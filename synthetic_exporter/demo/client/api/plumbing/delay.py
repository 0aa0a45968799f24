from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.delay_delayed import DelayDelayed
from ...models.error import Error
from ...types import Response


def _get_kwargs(
    ms: int,
) -> dict[str, Any]:

    _kwargs: dict[str, Any] = {
        "method": "get",
        "url": "/delay/{ms}".format(
            ms=quote(str(ms), safe=""),
        ),
    }

    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> DelayDelayed | Error | None:
    if response.status_code == 200:
        response_200 = DelayDelayed.from_dict(response.json())

        return response_200

    if response.status_code == 422:
        response_422 = Error.from_dict(response.json())

        return response_422

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[DelayDelayed | Error]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    ms: int,
    *,
    client: AuthenticatedClient | Client,
) -> Response[DelayDelayed | Error]:
    """Answer after ms milliseconds (at most 60000), for timeout checks

    Args:
        ms (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DelayDelayed | Error]
    """

    kwargs = _get_kwargs(
        ms=ms,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    ms: int,
    *,
    client: AuthenticatedClient | Client,
) -> DelayDelayed | Error | None:
    """Answer after ms milliseconds (at most 60000), for timeout checks

    Args:
        ms (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DelayDelayed | Error
    """

    return sync_detailed(
        ms=ms,
        client=client,
    ).parsed


async def asyncio_detailed(
    ms: int,
    *,
    client: AuthenticatedClient | Client,
) -> Response[DelayDelayed | Error]:
    """Answer after ms milliseconds (at most 60000), for timeout checks

    Args:
        ms (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DelayDelayed | Error]
    """

    kwargs = _get_kwargs(
        ms=ms,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    ms: int,
    *,
    client: AuthenticatedClient | Client,
) -> DelayDelayed | Error | None:
    """Answer after ms milliseconds (at most 60000), for timeout checks

    Args:
        ms (int):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DelayDelayed | Error
    """

    return (
        await asyncio_detailed(
            ms=ms,
            client=client,
        )
    ).parsed
