import { IsInt, IsString, Length, Max, Min } from 'class-validator';
import { Body, Delete, Get, HttpCode, JsonController, NotFoundError, OnUndefined, Param, Post, Put, logger } from '@pilotlight/sdk';

/** What a client sends to create or replace a todo; checked before the method runs. */
export class TodoInput {
  @IsString()
  @Length(1, 200)
  title!: string;

  @IsInt()
  @Min(1)
  @Max(5)
  priority!: number;
}

interface Todo extends TodoInput {
  id: number;
}

/**
 * A JSON CRUD function with body validation. State lives in the instance, which is enough for a
 * demo; a real function keeps it in a database.
 */
@JsonController('/todos')
export class TodoFunction {
  readonly #todos = new Map<number, Todo>();
  #nextId = 1;

  @Get('/')
  list(): Todo[] {
    return [...this.#todos.values()];
  }

  @Get('/:id')
  get(@Param('id') id: number): Todo {
    const todo = this.#todos.get(id);
    if (!todo) throw new NotFoundError(`no todo ${id}`);
    return todo;
  }

  @Post('/')
  @HttpCode(201)
  create(@Body({ validate: true, required: true }) input: TodoInput): Todo {
    const todo = { id: this.#nextId++, title: input.title, priority: input.priority };
    this.#todos.set(todo.id, todo);
    logger.info({ id: todo.id }, 'todo created');
    return todo;
  }

  @Put('/:id')
  replace(@Param('id') id: number, @Body({ validate: true, required: true }) input: TodoInput): Todo {
    if (!this.#todos.has(id)) throw new NotFoundError(`no todo ${id}`);
    const todo = { id, title: input.title, priority: input.priority };
    this.#todos.set(id, todo);
    return todo;
  }

  @Delete('/:id')
  @OnUndefined(204)
  remove(@Param('id') id: number): void {
    if (!this.#todos.delete(id)) throw new NotFoundError(`no todo ${id}`);
  }
}
