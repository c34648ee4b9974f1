import { invoke } from '@pilotlight/sdk/testing';
import { describe, expect, it } from 'vitest';
import { TodoFunction } from '../dist/index.js';

describe('TodoFunction', () => {
  it('creates, reads, replaces and deletes a todo', async () => {
    const created = await invoke(TodoFunction, { method: 'POST', path: '/todos', body: { title: 'write tests', priority: 2 } });
    expect(created.status).toBe(201);
    const todo = (await created.json()) as { id: number };
    expect(todo).toMatchObject({ title: 'write tests', priority: 2 });

    const read = await invoke(TodoFunction, { path: `/todos/${todo.id}` });
    expect(await read.json()).toEqual(todo);

    const replaced = await invoke(TodoFunction, { method: 'PUT', path: `/todos/${todo.id}`, body: { title: 'done', priority: 1 } });
    expect(await replaced.json()).toEqual({ id: todo.id, title: 'done', priority: 1 });

    expect((await invoke(TodoFunction, { method: 'DELETE', path: `/todos/${todo.id}` })).status).toBe(204);
    expect((await invoke(TodoFunction, { path: `/todos/${todo.id}` })).status).toBe(404);
  });

  it('refuses an invalid body with 400 and says which fields are wrong', async () => {
    const res = await invoke(TodoFunction, { method: 'POST', path: '/todos', body: { title: '', priority: 9 } });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: { property: string }[] };
    expect(body.errors.map((e) => e.property).sort()).toEqual(['priority', 'title']);
  });
});
