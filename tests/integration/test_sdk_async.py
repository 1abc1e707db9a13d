"""ragpulse.AsyncPipeline against a real `ragpulse serve`: the README's block and track() with
asyncio (`async with`, `async for`). See test_sdk.py for the synchronous variant."""
import asyncio

import pytest

from conftest import USE_REF
from sdk_helpers import all_events, get, hub  # noqa: F401 (hub: a fixture)

import ragpulse

pytestmark = pytest.mark.skipif(USE_REF, reason='the hub exists only in ragpulse serve')




def test_async_block_and_track(hub, tmp_path):
    async def ingest(n):
        # Not a wait: sleep(0) only yields to the event loop (an await point, zero time).
        await asyncio.sleep(0)  # yield to the loop, zero time
        if n % 10 == 3:
            raise RuntimeError(f'item {n}')
        return n

    async def run():
        async with ragpulse.AsyncPipeline('aio', 'local_files', hub=hub.url, queue=str(tmp_path / 'q')) as p:
            async with p.file('a.pdf', name='a.pdf', size=1234) as f:
                f.progress(0.4, stage='chunk')
                f.chunks = 12
            with pytest.raises(ValueError):
                async with p.file('b.pdf') as f:
                    raise ValueError('bad b')
            got = [r async for r in p.track(range(20), ingest, name=lambda n: f'd{n}', on_error='continue')]
            assert got == [n for n in range(20) if n % 10 != 3]
            assert await p.flush(10)

    asyncio.run(run())
    evs = all_events(hub.url, 'aio')
    assert [e['type'] for e in evs[:7]] == ['pipeline:online', 'file:processing', 'file:progress',
                                            'file:completed', 'file:processing', 'file:failed',
                                            'file:processing']
    assert evs[5]['file']['error']['kind'] == 'ValueError'
    assert evs[-1]['type'] == 'pipeline:offline'
    [st] = get(hub.url, '/api/rag-status')['pipelines']
    assert st['counters']['processed'] == 1 + 18 and st['counters']['failed'] == 1 + 2
